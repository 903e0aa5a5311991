from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.db import bootstrap


class Command(BaseCommand):
    help = (
        "With a superuser's connection (DATABASE_ADMIN_URL): create the application's login "
        "role, its role administrator, the database and the role functions. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-url", default=None, help="defaults to DATABASE_ADMIN_URL")

    def handle(self, *args: Any, **options: Any) -> None:
        admin_url = options["admin_url"] or settings.DATABASE_ADMIN_URL
        if not admin_url:
            raise CommandError("Set DATABASE_ADMIN_URL (a superuser's connection URL).")
        database = settings.DATABASES["default"]["NAME"]
        app_role = settings.DATABASES["default"]["USER"] or settings.SESSHU_DB_APP_ROLE
        password = settings.DATABASES["default"]["PASSWORD"] or None
        bootstrap.bootstrap_cluster(admin_url, app_role=app_role, app_password=password)
        bootstrap.create_database(admin_url, database=database, app_role=app_role)
        bootstrap.bootstrap_database(admin_url, database=database, app_role=app_role)
        self.stdout.write(f"Database {database} ready for role {app_role}.")
