from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sesshu.command_actor import command_actor
from tenants.models import Municipality
from tenants.services import ProvisioningError, municipality_provision


class Command(BaseCommand):
    help = "Provision a municipality: schema, database role, data key, domain, first admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--code", required=True, help="市区町村コード, e.g. 132110")
        parser.add_argument("--subdomain", required=True, help="e.g. kodaira")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--name",
            default=None,
            help="defaults to the national list's name; for a listed code it must be that name",
        )
        parser.add_argument(
            "--login-mode",
            choices=Municipality.LoginMode.values,
            default=Municipality.LoginMode.VOUCHER_CODE,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = municipality_provision(
                code=options["code"],
                subdomain=options["subdomain"],
                admin_email=options["admin_email"],
                name=options["name"],
                login_mode=options["login_mode"],
                actor=command_actor("tenant_provision"),
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        m = result.municipality
        self.stdout.write(self.style.SUCCESS(f"Provisioned {m.code} {m.name} ({m.prefecture})."))
        self.stdout.write(f"  Residents:  {result.resident_url}")
        self.stdout.write(f"  Console:    {result.console_url}")
        self.stdout.write(
            f"  First admin ({result.admin_email}): open this single-use link within 3 days,\n"
            f"  set a password and register an authenticator app (TOTP):\n"
            f"    {result.admin_setup_url}"
        )
