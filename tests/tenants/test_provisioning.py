from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from audit.chain import Actor
from audit.platform.models import PlatformEvent
from booking.models import StaffInvitation
from booking.services.staff import token_hash
from tenants.crypto import cipher_for
from tenants.keys import KeyUnavailable, data_key_for
from tenants.models import Domain, Municipality
from tenants.services import (
    ProvisioningError,
    municipality_decommission,
    municipality_provision,
    municipality_resume,
    municipality_suspend,
)

ACTOR = Actor.system("tests")


def _schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def _role_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        return cursor.fetchone() is not None


def test_provisioning_creates_schema_role_key_domain_and_an_admin_invitation(db: None) -> None:
    result = municipality_provision(
        code="011002", subdomain="sapporo", admin_email="Admin@Sapporo.example.jp", actor=ACTOR
    )
    m = result.municipality
    assert (m.name, m.prefecture, m.schema_name) == ("札幌市", "北海道", "m011002")
    assert _schema_exists("m011002")
    assert _role_exists(f"{connection.settings_dict['NAME']}_r_m011002")
    assert len(data_key_for(tenant_code=m.code, wrapped=bytes(m.wrapped_data_key))) == 32
    assert Domain.objects.get(tenant=m).domain == "sapporo.localhost"
    assert result.admin_setup_url.startswith("http://sapporo.localhost/console/setup/")
    token = result.admin_setup_url.rstrip("/").rsplit("/", 1)[1]
    with schema_context(m.schema_name):
        invitation = StaffInvitation.objects.get()
        assert invitation.token_hash == token_hash(token)
        assert invitation.email == "admin@sapporo.example.jp"
    assert PlatformEvent.objects.filter(action="municipality.provisioned", target_id=str(m.pk))


def test_provisioning_the_same_code_twice_is_a_clear_error(tenant_a: Municipality) -> None:
    with pytest.raises(ProvisioningError, match="132110（小平市）は既に登録されています"):
        municipality_provision(
            code="132110", subdomain="kodaira2", admin_email="a@x.jp", actor=ACTOR
        )
    with pytest.raises(CommandError, match="既に登録されています"):
        call_command("tenant_provision", code="132110", subdomain="kodaira3", admin_email="a@x.jp")


@pytest.mark.parametrize(
    ("code", "subdomain", "message"),
    [
        ("000000", "zero", "都道府県コード"),
        ("132111", "kodaira9", "検査数字"),
        ("011002", "kodaira", "使用中"),
        ("011002", "platform", "予約"),
        ("011002", "Bad_Name", "サブドメイン"),
        ("139998", "demo", "一覧にありません"),
    ],
)
def test_it_refuses_bad_requests_with_a_message(
    tenant_a: Municipality, code: str, subdomain: str, message: str
) -> None:
    with pytest.raises(ProvisioningError, match=message):
        municipality_provision(code=code, subdomain=subdomain, admin_email="a@x.jp", actor=ACTOR)
    assert not Municipality.objects.filter(code=code).exists()


def test_the_command_prints_urls_and_how_the_admin_signs_in(db: None, capsys) -> None:
    call_command(
        "tenant_provision",
        code="141003",
        subdomain="yokohama",
        admin_email="admin@yokohama.example.jp",
    )
    out = capsys.readouterr().out
    assert "141003 横浜市" in out
    assert "http://yokohama.localhost/console/" in out
    assert "http://yokohama.localhost/console/setup/" in out
    assert "authenticator" in out


def test_suspend_and_resume(tenant_a: Municipality) -> None:
    m = municipality_suspend(municipality=tenant_a, actor=ACTOR, reason="maintenance")
    assert m.status == Municipality.Status.SUSPENDED
    with pytest.raises(ProvisioningError, match="停止中"):
        municipality_suspend(municipality=m, actor=ACTOR)
    m = municipality_resume(municipality=m, actor=ACTOR)
    assert m.status == Municipality.Status.ACTIVE
    actions = list(
        PlatformEvent.objects.filter(target_id=str(m.pk)).values_list("action", flat=True)
    )
    assert actions[-2:] == ["municipality.suspended", "municipality.resumed"]


def test_decommissioning_shreds_the_key_and_drops_schema_and_role(db: None) -> None:
    m = municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=ACTOR
    ).municipality
    cipher = cipher_for(m)
    sealed = cipher.encrypt_field("大阪 太郎", table="t", column="name", row_id="1")
    wrapped = bytes(m.wrapped_data_key)

    with pytest.raises(ProvisioningError, match="確認のため"):
        municipality_decommission(municipality=m, confirmation="271005", actor=ACTOR)
    m = municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    m.refresh_from_db()
    assert m.status == Municipality.Status.DECOMMISSIONED
    assert bytes(m.wrapped_data_key) == b"" and m.key_destroyed_at is not None
    assert not _schema_exists("m271004")
    assert not _role_exists(f"{connection.settings_dict['NAME']}_r_m271004")
    assert not Domain.objects.filter(tenant=m).exists()
    # Nothing of it decrypts any more: the stored key is gone and the process forgot it.
    with pytest.raises(KeyUnavailable):
        cipher_for(m)
    assert sealed and wrapped
    actions = set(
        PlatformEvent.objects.filter(target_id=str(m.pk)).values_list("action", flat=True)
    )
    assert {"tenant_key.destroyed", "municipality.decommissioned"} <= actions
    with pytest.raises(ProvisioningError, match="既に廃止"):
        municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)
