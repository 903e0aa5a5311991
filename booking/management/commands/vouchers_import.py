from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import RegistryImport
from booking.services.registry_import import (
    RegistryImportRefused,
    registry_import_apply,
    registry_import_confirm,
    registry_import_parse,
    registry_import_progress,
    registry_import_upload,
)
from tenants.models import Municipality


class Command(BaseCommand):
    help = "Import a municipality's voucher registry (接種券) from its CSV: preview, then apply."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, metavar="CODE", help="市区町村コード")
        parser.add_argument("file", help="the registry CSV")
        parser.add_argument("--dry-run", action="store_true", help="preview only; write nothing")
        parser.add_argument(
            "--full-list",
            action="store_true",
            help="the file lists every voucher: mark vouchers not in it as withdrawn",
        )
        parser.add_argument("--encoding", default="", help="cp932 or utf-8 (default: detect)")

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = Municipality.objects.filter(code=options["tenant"]).first()
        if municipality is None or municipality.status == Municipality.Status.DECOMMISSIONED:
            raise CommandError(f"No active municipality with code {options['tenant']}.")
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file.")
        actor = Actor.system("manage.py vouchers_import")
        with tenant_context(municipality):
            try:
                with open(path, "rb") as stream:
                    registry_import = registry_import_upload(
                        stream=stream,
                        file_name=os.path.basename(path),
                        size=os.path.getsize(path),
                        actor=actor,
                        source=RegistryImport.Source.COMMAND,
                        full_list=options["full_list"],
                        encoding=options["encoding"],
                        enqueue=False,
                    )
                # The command does the work itself (not through the queue) to show progress.
                registry_import_parse(registry_import_id=registry_import.pk, progress=self._bar)
                registry_import.refresh_from_db()
                self._report(registry_import)
                if registry_import.status != RegistryImport.Status.PREVIEWED:
                    raise CommandError(registry_import.message or "The preview failed.")
                if options["dry_run"]:
                    self.stdout.write("Dry run: nothing was written.")
                    return
                registry_import_confirm(registry_import=registry_import, actor=actor, enqueue=False)
                registry_import_apply(registry_import_id=registry_import.pk, progress=self._bar)
                registry_import.refresh_from_db()
            except RegistryImportRefused as exc:
                raise CommandError(str(exc)) from exc
            self._report(registry_import)

    def _bar(self, registry_import: RegistryImport) -> None:
        report = registry_import_progress(registry_import)
        width = 30
        filled = int(report.fraction * width)
        left = f", {report.seconds_left:.0f} s left" if report.seconds_left is not None else ""
        sys.stderr.write(
            f"\r{report.phase:>9} [{'#' * filled}{'.' * (width - filled)}] "
            f"{report.fraction:6.1%} {report.rows_done:>9,} rows, "
            f"{report.rows_per_second:,.0f} rows/s{left}   "
        )
        if report.fraction >= 1:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _report(self, registry_import: RegistryImport) -> None:
        counts = registry_import.counts
        self.stdout.write(
            f"Import {registry_import.pk} ({registry_import.get_status_display()}): "
            + ", ".join(f"{key} {value}" for key, value in counts.items())
        )
        for error in registry_import.errors.all()[:20]:
            self.stdout.write(f"  line {error.line_number} {error.column}: {error.message}")
