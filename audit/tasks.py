"""The periodic sweep that seals what the after-commit sealing left (a busy sealer, a crash
between commit and sealing), for the platform's chain and every municipality's."""

from __future__ import annotations

from django_tenants.utils import schema_context

from sesshu.celery import app


@app.task(name="audit.seal_all")
def audit_seal_all() -> int:
    from audit.services import audit_seal_pending
    from tenants.models import Municipality

    sealed = audit_seal_pending()
    schemas = list(
        Municipality.objects.exclude(status=Municipality.Status.DECOMMISSIONED).values_list(
            "schema_name", flat=True
        )
    )
    for schema in schemas:
        with schema_context(schema):
            sealed += audit_seal_pending()
    return sealed


@app.task(name="audit.anchor_all")
def audit_anchor_all() -> int:
    """Copy every chain's head into the Object Lock bucket (audit.anchors)."""
    from audit.anchors import anchor_all

    return anchor_all()
