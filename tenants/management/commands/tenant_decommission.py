from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from sesshu.command_actor import command_actor
from tenants.management.commands._base import MunicipalityCommand
from tenants.services import ProvisioningError, municipality_decommission


class Command(MunicipalityCommand):
    help = (
        "Decommission a municipality: destroy its data key, drop its schema and role. Irreversible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--confirm",
            default=None,
            help="type the code again to confirm (asked interactively when omitted)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = self.municipality(options["code"])
        confirmation = options["confirm"]
        if confirmation is None:
            if not sys.stdin.isatty():
                raise CommandError("Pass --confirm CODE when not running interactively.")
            confirmation = input(
                f"This destroys every record of {municipality}. Type its code to confirm: "
            )
        try:
            municipality = municipality_decommission(
                municipality=municipality,
                confirmation=confirmation,
                actor=command_actor("tenant_decommission"),
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{municipality}: decommissioned; key destroyed, schema dropped.")
