from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.models import Municipality


class MunicipalityCommand(BaseCommand):
    """A command that acts on one municipality named by its code."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--code", required=True, help="市区町村コード (6 digits)")

    def municipality(self, code: str) -> Municipality:
        municipality = Municipality.objects.filter(code=code.strip()).first()
        if municipality is None:
            raise CommandError(f"No municipality with code {code}.")
        return municipality
