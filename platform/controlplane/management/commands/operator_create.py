"""Create a vendor operator: ``manage.py operator_create --username U [--email E]``.

Prints the password once (random unless ``--password-stdin``) and the TOTP device's
otpauth:// URI to add to an authenticator app. Neither is stored in the clear.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.services import OperatorError, operator_create
from sesshu.command_actor import command_actor


class Command(BaseCommand):
    help = "Create a vendor operator (control plane) with a password and a TOTP device."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on standard input.")
        try:
            created = operator_create(
                username=options["username"],
                email=options["email"],
                password=password,
                actor=command_actor("operator_create"),
            )
        except OperatorError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Vendor operator {created.user.get_username()!r} created.")
        if password is None:
            self.stdout.write(f"Password (shown once): {created.password}")
        self.stdout.write(f"TOTP (add to an authenticator app): {created.device.config_url}")
