from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.anchors import AnchorMismatch, anchors_configured, check_against_latest_anchor
from audit.services import audit_seal_pending, audit_verify
from tenants.models import Municipality


class Command(BaseCommand):
    help = (
        "Verify a municipality's (or the platform's) audit hash chain, and that it still holds"
        " what its latest anchor in the Object Lock bucket recorded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", metavar="CODE", help="municipality code, e.g. 132110")
        target.add_argument("--platform", action="store_true", help="the control plane's chain")
        parser.add_argument(
            "--no-anchor",
            action="store_true",
            help="do not compare with the latest anchor in SESSHU_AUDIT_ANCHOR_BUCKET",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["platform"]:
            schema = "public"
        else:
            tenant = Municipality.objects.filter(code=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No municipality with code {options['tenant']}.")
            if tenant.status == Municipality.Status.DECOMMISSIONED:
                raise CommandError(f"{tenant} is decommissioned; its trail was dropped.")
            schema = tenant.schema_name
        check_anchor = not options["no_anchor"] and anchors_configured()
        with schema_context(schema):
            audit_seal_pending()  # what committed but waits for the sweep, sealed first
            report = audit_verify()
            if not report.ok:
                raise CommandError(
                    f"Chain {report.chain}: BROKEN at event #{report.broken_seq}: "
                    f"{report.problem}. {report.events} events before it verify."
                )
            try:
                anchor = check_against_latest_anchor() if check_anchor else None
            except AnchorMismatch as exc:
                raise CommandError(
                    f"Chain {report.chain}: does NOT match its latest anchor: {exc}."
                ) from exc
        self.stdout.write(
            f"Chain {report.chain}: OK, {report.events} events, head {report.head[:16]}…"
            + (f" ({report.pending} not sealed yet)" if report.pending else "")
        )
        if anchor is not None:
            self.stdout.write(
                f"Anchor: matches event #{anchor.seq} anchored at {anchor.anchored_at}."
            )
        elif check_anchor:
            self.stdout.write("Anchor: none yet for this chain.")
        else:
            self.stdout.write("Anchor: not checked (no SESSHU_AUDIT_ANCHOR_BUCKET).")
