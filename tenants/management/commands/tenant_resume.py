from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from sesshu.command_actor import command_actor
from tenants.management.commands._base import MunicipalityCommand
from tenants.services import ProvisioningError, municipality_resume


class Command(MunicipalityCommand):
    help = "Resume a suspended municipality's resident site and console."

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = self.municipality(options["code"])
        try:
            municipality = municipality_resume(
                municipality=municipality, actor=command_actor("tenant_resume")
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{municipality}: {municipality.get_status_display()}")
