"""Two requests to provision one municipality at once (an operator's double click): one
provisions it, the other is told it is registered, and what the first made stays whole.

Real concurrent connections, outside the test transaction (like the booking rush)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections

from audit.chain import Actor
from tenants.db.roles import owner_mode
from tenants.models import Domain, Municipality
from tenants.services import ProvisioningError, municipality_decommission, municipality_provision

ACTOR = Actor.system("tests")
CODE = "132098"  # 町田市


def _exists(query: str, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(query, [name])
        return cursor.fetchone() is not None


def test_a_double_click_provisions_once_and_leaves_the_first_whole(
    django_db_setup: None, django_db_blocker
) -> None:
    barrier = threading.Barrier(2)

    def provision(subdomain: str) -> str:
        try:
            barrier.wait(timeout=30)
            municipality_provision(
                code=CODE, subdomain=subdomain, admin_email="admin@machida.example.jp", actor=ACTOR
            )
            return "provisioned"
        except ProvisioningError as refused:
            return str(refused)
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                results = list(pool.map(provision, ["machida", "machida-2"]))
            assert results.count("provisioned") == 1, results
            (refusal,) = [result for result in results if result != "provisioned"]
            assert "132098（町田市）は既に登録されています" in refusal
            municipality = Municipality.objects.get(code=CODE)
            assert Domain.objects.filter(tenant=municipality).count() == 1
            assert _exists("SELECT 1 FROM pg_namespace WHERE nspname = %s", "m132098")
            role = f"{connection.settings_dict['NAME']}_r_m132098"
            assert _exists("SELECT 1 FROM pg_roles WHERE rolname = %s", role)
        finally:
            connection.set_schema_to_public()
            for municipality in Municipality.objects.filter(code=CODE):
                municipality_decommission(municipality=municipality, confirmation=CODE, actor=ACTOR)
                with owner_mode():
                    Municipality.objects.filter(pk=municipality.pk).delete()
            connection.set_schema_to_public()
