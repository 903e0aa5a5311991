from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from audit.chain import Actor
from audit.platform.models import PlatformEvent
from booking.models import StaffInvitation
from booking.services.staff import token_hash
from tenants import services as tenants_services
from tenants.crypto import DecryptionFailed, TenantCipher, cipher_for
from tenants.keys import KeyUnavailable, data_key_cached, data_key_for, key_provider
from tenants.models import Domain, Municipality
from tenants.services import (
    ProvisioningError,
    decommission_unfinished,
    municipality_decommission,
    municipality_provision,
    municipality_resume,
    municipality_suspend,
    tenant_files_delete,
)
from tenants.storage import TenantS3Storage

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


@pytest.mark.parametrize("address", ["notanemail", " ", "a@b@example.jp"])
def test_a_first_admin_address_that_is_not_one_is_refused(db: None, address: str) -> None:
    with pytest.raises(ProvisioningError, match="管理者のメールアドレス"):
        municipality_provision(code="011002", subdomain="sapporo", admin_email=address, actor=ACTOR)
    assert not Municipality.objects.filter(code="011002").exists()
    with pytest.raises(CommandError, match="管理者のメールアドレス"):
        call_command("tenant_provision", code="011002", subdomain="sapporo", admin_email=address)


def test_the_command_reads_a_code_typed_in_full_width(db: None) -> None:
    call_command(
        "tenant_provision", code="０１１００２", subdomain="sapporo", admin_email="a@sapporo.jp"
    )
    assert Municipality.objects.get(code="011002").name == "札幌市"


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


def test_decommissioning_shreds_the_key_and_drops_schema_and_role(
    tenant_b: Municipality,
) -> None:
    m = municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=ACTOR
    ).municipality
    cipher = cipher_for(m)  # the key is now in this process's cache, as in a busy worker
    sealed = cipher.encrypt_field("大阪 太郎", table="t", column="name", row_id="1")
    wrapped_before = bytes(m.wrapped_data_key)
    assert data_key_cached(m.code)

    with pytest.raises(ProvisioningError, match="確認のため"):
        municipality_decommission(municipality=m, confirmation="271005", actor=ACTOR)
    m = municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    m.refresh_from_db()
    assert m.status == Municipality.Status.DECOMMISSIONED
    # No data key stored, none cached.
    assert bytes(m.wrapped_data_key) == b"" and m.key_destroyed_at is not None
    assert not data_key_cached(m.code)
    # Its ciphertext decrypts through no path the platform has: the cipher, the cache, the
    # provider unwrapping what is stored, nor another municipality's key.
    with pytest.raises(KeyUnavailable):
        cipher_for(m)
    with pytest.raises(KeyUnavailable):
        data_key_for(tenant_code=m.code, wrapped=bytes(m.wrapped_data_key))
    with pytest.raises(KeyUnavailable):
        key_provider().unwrap_data_key(tenant_code=m.code, wrapped=bytes(m.wrapped_data_key))
    with pytest.raises(DecryptionFailed):
        cipher_for(tenant_b).decrypt_field(sealed, table="t", column="name", row_id="1")
    # Schema, role and domain are gone.
    assert not _schema_exists("m271004")
    assert not _role_exists(f"{connection.settings_dict['NAME']}_r_m271004")
    assert not Domain.objects.filter(tenant=m).exists()
    actions = set(
        PlatformEvent.objects.filter(target_id=str(m.pk)).values_list("action", flat=True)
    )
    assert {"tenant_key.destroyed", "municipality.decommissioned"} <= actions
    with pytest.raises(ProvisioningError, match="既に廃止"):
        municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    # What shredding does not reach, pinned so docs/operations.md stays true: the master key
    # is shared by all municipalities, so a copy of the wrapped key taken before (a database
    # backup or snapshot) still unwraps until that backup expires.
    recovered = TenantCipher(
        m.code, key_provider().unwrap_data_key(tenant_code=m.code, wrapped=wrapped_before)
    )
    assert recovered.decrypt_field(sealed, table="t", column="name", row_id="1") == "大阪 太郎"


def _events(m: Municipality, action: str) -> list[PlatformEvent]:
    return list(PlatformEvent.objects.filter(target_id=str(m.pk), action=action))


@pytest.mark.parametrize("stopped_at", ["tenant_files_delete", "_drop_schema", "drop_schema_role"])
def test_a_decommission_stopped_half_way_is_finished_by_running_it_again(
    db: None, monkeypatch: pytest.MonkeyPatch, stopped_at: str
) -> None:
    m = municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=ACTOR
    ).municipality
    role = f"{connection.settings_dict['NAME']}_r_m271004"

    def unavailable(*args: object, **kwargs: object) -> None:
        raise OSError("storage or database unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(tenants_services, stopped_at, unavailable)
        with pytest.raises(ProvisioningError, match="データの削除が途中で止まりました"):
            municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    m.refresh_from_db()
    # The key went first: what is left is ciphertext nobody can read.
    assert m.status == Municipality.Status.DECOMMISSIONED and bytes(m.wrapped_data_key) == b""
    with pytest.raises(KeyUnavailable):
        cipher_for(m)
    assert _role_exists(role)
    assert _schema_exists("m271004") == (stopped_at != "drop_schema_role")
    assert decommission_unfinished(m)
    assert len(_events(m, "tenant_key.destroyed")) == 1
    assert not _events(m, "municipality.decommissioned")
    with pytest.raises(ProvisioningError, match="確認のため"):
        municipality_decommission(municipality=m, confirmation="271005", actor=ACTOR)

    municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    assert not _schema_exists("m271004") and not _role_exists(role)
    assert not decommission_unfinished(m)
    assert len(_events(m, "tenant_key.destroyed")) == 1  # destroyed once, not again
    (finished,) = _events(m, "municipality.decommissioned")
    assert finished.details["resumed"] is True
    with pytest.raises(ProvisioningError, match="既に廃止"):
        municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)


def test_a_municipality_whose_provisioning_died_before_its_schema_is_decommissioned(
    db: None,
) -> None:
    """A provisioning killed between the municipality's row and its schema leaves the row
    alone: decommissioning it must not try to create the schema (django-tenants' save())."""
    m = municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=ACTOR
    ).municipality
    tenants_services._drop_schema(m.schema_name)
    tenants_services.drop_schema_role(connection, m.schema_name)
    municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)
    m.refresh_from_db()
    assert m.status == Municipality.Status.DECOMMISSIONED and not _schema_exists("m271004")
    assert not decommission_unfinished(m)


def test_only_a_decommissioned_municipality_can_have_an_unfinished_decommission(
    tenant_a: Municipality,
) -> None:
    assert _schema_exists(tenant_a.schema_name)
    assert not decommission_unfinished(tenant_a)


def _store(schema_name: str, name: str, content: bytes) -> str:
    with schema_context(schema_name):
        return default_storage.save(name, ContentFile(content))


def test_decommissioning_deletes_the_municipalitys_files_and_no_others(
    tenant_b: Municipality, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    m = municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=ACTOR
    ).municipality
    mine = [
        _store(m.schema_name, "uploads/registry-imports/upload.csv", "大阪 太郎".encode()),
        _store(m.schema_name, "uploads/registry-imports/2026/12/upload.csv", b"row 2"),
        _store(m.schema_name, "exports/registry-imports/errors-7.bin", b"errors"),
    ]
    others = _store(tenant_b.schema_name, "uploads/registry-imports/upload.csv", b"B's")
    platform_file = default_storage.save("exports/report.txt", ContentFile(b"platform"))
    assert all(f"/tenants/{m.schema_name}/" in name for name in mine)

    municipality_decommission(municipality=m, confirmation="271004", actor=ACTOR)

    with schema_context(m.schema_name):
        assert not any(default_storage.exists(name) for name in mine)
    assert not (tmp_path / "uploads" / "tenants" / m.schema_name).exists()  # folders too
    assert not (tmp_path / "exports" / "tenants" / m.schema_name).exists()
    with schema_context(tenant_b.schema_name):
        assert default_storage.open(others).read() == b"B's"
    assert default_storage.exists(platform_file)
    event = PlatformEvent.objects.get(action="municipality.decommissioned", target_id=str(m.pk))
    # A count, no names.
    assert event.details == {"code": "271004", "files_deleted": 3, "resumed": False}


def test_files_are_deleted_from_s3_under_the_tenants_prefix_only(
    tenant_a: Municipality, tenant_b: Municipality, local_aws: str
) -> None:
    bucket = "sesshu-files-test"
    storage = TenantS3Storage(
        bucket_name=bucket,
        endpoint_url=local_aws,
        access_key="testing",
        secret_key="testing",
        region_name="ap-northeast-1",
    )
    storage.connection.meta.client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
    )

    def put(schema_name: str, name: str) -> str:
        with schema_context(schema_name):
            return storage.save(name, ContentFile(b"x"))

    mine = [put(tenant_a.schema_name, f"uploads/registry-imports/{i}.csv") for i in range(3)]
    mine.append(put(tenant_a.schema_name, "exports/registry-imports/codes-1.bin"))
    others = put(tenant_b.schema_name, "uploads/registry-imports/0.csv")

    assert tenant_files_delete(tenant_a.schema_name, storage=storage) == 4

    keys = {
        entry["Key"]
        for entry in storage.connection.meta.client.list_objects_v2(Bucket=bucket).get(
            "Contents", []
        )
    }
    assert keys == {others}
    assert all(f"/tenants/{tenant_a.schema_name}/" in name for name in mine)
    assert tenant_files_delete(tenant_a.schema_name, storage=storage) == 0
    with pytest.raises(ValueError, match="not public"):
        tenant_files_delete("public", storage=storage)


def test_a_name_that_is_not_the_national_lists_is_refused(db: None) -> None:
    with pytest.raises(ProvisioningError, match="全国の一覧では「札幌市」です"):
        municipality_provision(
            code="011002",
            name="小平市",
            subdomain="sapporo",
            admin_email="a@x.jp",
            actor=ACTOR,
        )
    assert not Municipality.objects.filter(code="011002").exists()
    with pytest.raises(CommandError, match="「札幌市」と入力してください"):
        call_command(
            "tenant_provision",
            code="011002",
            name="さっぽろ",
            subdomain="sapporo",
            admin_email="a@x.jp",
        )
    assert not Municipality.objects.filter(code="011002").exists()


def test_the_national_lists_name_is_accepted_in_any_width_or_spacing(db: None) -> None:
    m = municipality_provision(
        code="011002", name=" 札幌市　", subdomain="sapporo", admin_email="a@x.jp", actor=ACTOR
    ).municipality
    assert m.name == "札幌市"


def test_a_code_off_the_national_list_with_a_listed_name_is_a_mistyped_code(db: None) -> None:
    # 102008: a valid check digit, and not a municipality; 前橋市 is 102016.
    with pytest.raises(ProvisioningError, match="「前橋市」の市区町村コードは 102016 です"):
        municipality_provision(
            code="102008", name="前橋市", subdomain="maebashi", admin_email="a@x.jp", actor=ACTOR
        )
    assert not Municipality.objects.filter(code="102008").exists()


def test_a_code_off_the_national_list_keeps_the_name_given(db: None) -> None:
    m = municipality_provision(
        code="139998", name="デモ市", subdomain="demo", admin_email="a@x.jp", actor=ACTOR
    ).municipality
    assert (m.name, m.prefecture) == ("デモ市", "東京都")
