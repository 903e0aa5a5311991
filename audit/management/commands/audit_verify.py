from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.services import audit_seal_pending, audit_verify
from tenants.models import Municipality


class Command(BaseCommand):
    help = "Verify a municipality's (or the platform's) audit hash chain."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", metavar="CODE", help="municipality code, e.g. 132110")
        target.add_argument("--platform", action="store_true", help="the control plane's chain")

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
        with schema_context(schema):
            audit_seal_pending()  # what committed but waits for the sweep, sealed first
            report = audit_verify()
        if not report.ok:
            raise CommandError(
                f"Chain {report.chain}: BROKEN at event #{report.broken_seq}: {report.problem}. "
                f"{report.events} events before it verify."
            )
        self.stdout.write(
            f"Chain {report.chain}: OK, {report.events} events, head {report.head[:16]}…"
            + (f" ({report.pending} not sealed yet)" if report.pending else "")
        )
