from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from booking.models import RegistryImport
from booking.models.registry import DRY_RUN
from booking.services.registry_import import (
    RegistryImportRefused,
    RegistryImportStalled,
    addresses_elsewhere,
    registry_import_apply,
    registry_import_cancel,
    registry_import_confirm,
    registry_import_parse,
    registry_import_progress,
    registry_import_upload,
    withdrawals_to_acknowledge,
)
from booking.services.registry_upkeep import registry_import_resume
from sesshu.command_actor import command_actor
from tenants.models import Municipality

ACTOR = command_actor("vouchers_import")
REPORT_ORDER = (
    "rows",
    "new",
    "changed",
    "unchanged",
    "invalid",
    "withdrawn",
    "withdrawn_with_booking",
    "codes_issued",
)


class Command(BaseCommand):
    help = (
        "Import a municipality's voucher registry (接種券) from its CSV: preview, then apply."
        " --resume ID finishes an import whose run was killed; --cancel ID drops one that"
        " has not started writing vouchers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, metavar="CODE", help="市区町村コード")
        parser.add_argument("file", nargs="?", help="the registry CSV")
        parser.add_argument("--dry-run", action="store_true", help="preview only; write nothing")
        parser.add_argument(
            "--full-list",
            action="store_true",
            help="the file lists every voucher: mark vouchers not in it as withdrawn",
        )
        parser.add_argument(
            "--confirm-withdrawals",
            type=int,
            default=0,
            metavar="N",
            help="with --full-list: the number of vouchers it withdraws, when they are many"
            " (more than 5%% of the active ones); the preview says it",
        )
        parser.add_argument("--encoding", default="", help="cp932 or utf-8 (default: detect)")
        parser.add_argument(
            "--resume",
            type=int,
            metavar="ID",
            help="finish an interrupted import (its run was killed): parse again or apply on",
        )
        parser.add_argument(
            "--cancel", type=int, metavar="ID", help="cancel an import that is not applying"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        municipality = Municipality.objects.filter(code=options["tenant"]).first()
        if municipality is None or municipality.status == Municipality.Status.DECOMMISSIONED:
            raise CommandError(f"No active municipality with code {options['tenant']}.")
        chosen = [options["file"], options["resume"], options["cancel"]]
        if sum(choice is not None for choice in chosen) != 1:
            raise CommandError("Give a FILE, or --resume ID, or --cancel ID.")
        with tenant_context(municipality):
            try:
                if options["resume"] is not None:
                    self._resume(options["resume"], dry_run=options["dry_run"])
                elif options["cancel"] is not None:
                    registry_import = registry_import_cancel(
                        registry_import=self._import(options["cancel"]), actor=ACTOR
                    )
                    self._report(registry_import)
                else:
                    self._import_file(options)
            except RegistryImportStalled as exc:
                stalled = exc.registry_import
                raise CommandError(
                    f"{exc}\nImport {stalled.pk} ({stalled.file_name}) was interrupted. Run:"
                    f" manage.py vouchers_import --tenant {municipality.code}"
                    f" --resume {stalled.pk}"
                    + (
                        ""
                        if stalled.status == RegistryImport.Status.APPLYING
                        else f"  (or --cancel {stalled.pk})"
                    )
                ) from exc
            except RegistryImportRefused as exc:
                raise CommandError(str(exc)) from exc

    def _import(self, pk: int) -> RegistryImport:
        registry_import = RegistryImport.objects.filter(pk=pk).first()
        if registry_import is None:
            raise CommandError(f"No import {pk} in this municipality.")
        return registry_import

    def _import_file(self, options: dict[str, Any]) -> None:
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file.")
        with open(path, "rb") as stream:
            registry_import = registry_import_upload(
                stream=stream,
                file_name=os.path.basename(path),
                size=os.path.getsize(path),
                actor=ACTOR,
                source=RegistryImport.Source.COMMAND,
                full_list=options["full_list"],
                encoding=options["encoding"],
                enqueue=False,
            )
        # The command does the work itself (not through the queue) to show progress.
        self._preview_then_apply(
            registry_import,
            dry_run=options["dry_run"],
            withdrawals=options["confirm_withdrawals"],
        )

    def _preview(self, registry_import: RegistryImport) -> None:
        registry_import_parse(registry_import_id=registry_import.pk, progress=self._bar)
        registry_import.refresh_from_db()
        self._report(registry_import)

    def _preview_then_apply(
        self, registry_import: RegistryImport, *, dry_run: bool, withdrawals: int = 0
    ) -> None:
        self._preview(registry_import)
        if registry_import.status != RegistryImport.Status.PREVIEWED:
            raise CommandError(registry_import.message or "The preview failed.")
        if dry_run:
            # Nothing is to follow: drop the staged rows and the plaintext upload now.
            registry_import_cancel(registry_import=registry_import, actor=ACTOR, reason=DRY_RUN)
            self.stdout.write(
                f"Dry run: nothing was written; import {registry_import.pk} is cancelled."
            )
            return
        try:
            registry_import_confirm(
                registry_import=registry_import,
                actor=ACTOR,
                enqueue=False,
                withdrawals_acknowledged=withdrawals,
            )
        except RegistryImportRefused as refused:
            registry_import_cancel(registry_import=registry_import, actor=ACTOR)
            cancelled = f"Nothing was written; import {registry_import.pk} is cancelled."
            many = withdrawals_to_acknowledge(registry_import)
            if many and many != withdrawals:
                # The command's own words: the service's speak of the screen's check box.
                given = (
                    f" --confirm-withdrawals {withdrawals} does not match that number."
                    if withdrawals
                    else ""
                )
                raise CommandError(
                    f"This full list withdraws {many:,} of"
                    f" {registry_import.counts.get('active', 0):,} active vouchers"
                    f" (全件リストで対象外になる接種券: {many:,}件).{given} {cancelled}"
                    f" Check the file; to go ahead, run again with --confirm-withdrawals {many}."
                ) from refused
            raise CommandError(f"{refused}\n{cancelled}") from refused
        self._apply(registry_import)

    def _apply(self, registry_import: RegistryImport) -> None:
        registry_import_apply(registry_import_id=registry_import.pk, progress=self._bar)
        registry_import.refresh_from_db()
        self._report(registry_import)
        if registry_import.status != RegistryImport.Status.DONE:
            raise CommandError(registry_import.message or "The import did not finish.")

    def _resume(self, pk: int, *, dry_run: bool) -> None:
        registry_import = self._import(pk)
        phase = registry_import_resume(registry_import=registry_import, actor=ACTOR, enqueue=False)
        self.stdout.write(f"Resuming import {pk} ({registry_import.file_name}): {phase}.")
        if phase == "apply":
            self._apply(registry_import)
        elif registry_import.source == RegistryImport.Source.COMMAND:
            # What the interrupted command was asked to do: preview, then (unless a dry
            # run) apply.
            self._preview_then_apply(registry_import, dry_run=dry_run)
        else:
            # Uploaded from a screen: the operator confirms the preview there.
            self._preview(registry_import)

    def _bar(self, registry_import: RegistryImport) -> None:
        report = registry_import_progress(registry_import)
        width = 30
        filled = int(report.fraction * width)
        left = f", {report.seconds_left:.0f} s left" if report.seconds_left is not None else ""
        self.stderr.write(
            f"\r{report.phase:>9} [{'#' * filled}{'.' * (width - filled)}] "
            f"{report.fraction:6.1%} {report.rows_done:>9,} rows, "
            f"{report.rows_per_second:,.0f} rows/s{left}   ",
            style_func=str,  # progress, not an error: no red
            ending="\n" if report.fraction >= 1 else "",
        )
        self.stderr.flush()

    def _report(self, registry_import: RegistryImport) -> None:
        counts = registry_import.counts
        # The preview's order (the database keeps JSON keys in its own).
        keys = [key for key in REPORT_ORDER if key in counts]
        keys += sorted(set(counts) - set(keys))
        self.stdout.write(
            f"Import {registry_import.pk} ({registry_import.get_status_display()}): "
            + ", ".join(f"{key} {counts[key]}" for key in keys)
        )
        elsewhere = addresses_elsewhere(registry_import)
        if elsewhere:
            count, checked, places = elsewhere
            self.stderr.write(
                f"Warning: {count:,} of the {checked:,} addresses read name another municipality"
                f" ({'、'.join(places)}). Check that the file is this municipality's list"
                " (ほかの市区町村の住所が多くあります)."
            )
        for error in registry_import.errors.all()[:20]:
            self.stdout.write(f"  line {error.line_number} {error.column}: {error.message}")
