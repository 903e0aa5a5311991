from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sesshu.command_actor import command_actor
from tenants.management.commands._base import MunicipalityCommand
from tenants.services import ProvisioningError, municipality_waiting_room_set


class Command(MunicipalityCommand):
    help = (
        "Set how many newcomers a minute the waiting room lets into a municipality's resident "
        "pages (0: no waiting room), or --platform-default to follow "
        "SESSHU_WAITING_ROOM_PER_MINUTE."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        rate = parser.add_mutually_exclusive_group(required=True)
        rate.add_argument("--per-minute", type=int)
        rate.add_argument("--platform-default", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = self.municipality(options["code"])
        try:
            municipality = municipality_waiting_room_set(
                municipality=municipality,
                per_minute=None if options["platform_default"] else options["per_minute"],
                actor=command_actor("tenant_waiting_room"),
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc
        own = municipality.waiting_room_per_minute
        self.stdout.write(
            f"{municipality}: waiting room "
            + ("follows the platform's rate" if own is None else f"{own:,} a minute")
        )
