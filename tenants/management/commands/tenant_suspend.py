from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sesshu.command_actor import command_actor
from tenants.management.commands._base import MunicipalityCommand
from tenants.services import ProvisioningError, municipality_suspend


class Command(MunicipalityCommand):
    help = "Suspend a municipality's resident site and console."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--reason", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = self.municipality(options["code"])
        try:
            municipality = municipality_suspend(
                municipality=municipality,
                actor=command_actor("tenant_suspend"),
                reason=options["reason"],
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{municipality}: {municipality.get_status_display()}")
