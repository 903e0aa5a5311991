"""The console's allowed networks: edited by the admin, enforced on every request and login."""

from __future__ import annotations

import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from booking.models import ConsoleNetwork
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import signed_in
from tests.booking.console.conftest import StaffAccount, events, login

NETWORKS = "/console/security/networks/"
OFFICE = "127.0.0.0/8 本庁舎（テストクライアント）\n203.0.113.0/24 コールセンター委託先"


def from_address(address: str) -> Client:
    return Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR=address)


def test_the_admin_saves_a_list_that_includes_their_own_address(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    page = client_a.get(NETWORKS).content.decode()
    assert "いまは制限していません" in page and "127.0.0.1" in page
    response = client_a.post(NETWORKS, {"networks": OFFICE})
    assert response.status_code == 302
    with schema_context(tenant_a.schema_name):
        assert list(ConsoleNetwork.objects.values_list("network", "label")) == [
            ("127.0.0.0/8", "本庁舎（テストクライアント）"),
            ("203.0.113.0/24", "コールセンター委託先"),
        ]
    saved = events(tenant_a, "console.networks_replaced")[-1]
    assert saved.details == {"networks": ["127.0.0.0/8", "203.0.113.0/24"]}
    assert client_a.get("/console/").status_code == 200


def test_a_list_that_would_lock_out_the_admin_is_refused(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    response = client_a.post(NETWORKS, {"networks": "203.0.113.0/24"})
    assert response.status_code == 400
    assert "この画面に戻れなくなります" in response.content.decode()
    with schema_context(tenant_a.schema_name):
        assert not ConsoleNetwork.objects.exists()


def test_lines_that_are_not_networks_are_named(
    client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    signed_in(client_a, admin_a, clock)
    response = client_a.post(NETWORKS, {"networks": "127.0.0.0/8\n192.0.2.10/24\nhonbu"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "2行目" in page and "3行目" in page


def test_another_address_is_refused_on_every_page_and_at_login(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    client_a.post(NETWORKS, {"networks": OFFICE})

    outside = from_address("198.51.100.7")
    response = outside.get("/console/login/")
    assert response.status_code == 403
    assert "このネットワークからは利用できません" in response.content.decode()
    clock.shift(30)
    assert login(outside, operator_a).status_code == 403
    refused = events(tenant_a, "console.network_refused")
    assert refused and all(event.ip == "198.51.100.7" for event in refused)
    assert events(tenant_a, "console.login_succeeded")[-1].actor_id == str(admin_a.user_id)

    # A session opened inside the allowed networks is refused from outside them, too.
    inside = from_address("203.0.113.40")
    signed_in(inside, operator_a, clock)
    assert inside.get("/console/callcentre/").status_code == 200
    inside.defaults["REMOTE_ADDR"] = "198.51.100.7"
    assert inside.get("/console/callcentre/").status_code == 403
    assert events(tenant_a, "console.access_refused")[-1].details["reason"] == "network"


def test_an_empty_list_lifts_the_restriction(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    client_a.post(NETWORKS, {"networks": OFFICE})
    assert from_address("198.51.100.7").get("/console/login/").status_code == 403
    client_a.post(NETWORKS, {"networks": ""})
    assert from_address("198.51.100.7").get("/console/login/").status_code == 200


def test_one_municipalitys_list_does_not_apply_to_another(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    client_a.post(NETWORKS, {"networks": OFFICE})
    chiyoda = Client(HTTP_HOST="chiyoda.localhost", REMOTE_ADDR="198.51.100.7")
    assert chiyoda.get("/console/login/").status_code == 200


def test_only_the_admin_edits_the_list(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, operator_a, clock)
    assert client_a.get(NETWORKS).status_code == 403
    assert client_a.post(NETWORKS, {"networks": "198.51.100.0/24"}).status_code == 403
    with schema_context(tenant_a.schema_name):
        assert not ConsoleNetwork.objects.exists()
