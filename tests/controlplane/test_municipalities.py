"""The municipality pages: list, provision, suspend/resume, decommission — each write through
tenants.services, by the logged-in vendor, in the platform audit trail."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test.client import Client as ClientType
from django_tenants.utils import schema_context

from audit.chain import Actor
from audit.platform.models import PlatformEvent
from booking.resident.waiting_room import queue_join
from controlplane.services import CreatedOperator
from tenants import services as tenants_services
from tenants.models import Domain, Municipality
from tenants.services import municipality_decommission, municipality_provision
from tenants.tasks import municipality_stats_refresh
from tests.redis_outage import closed_port, redis_at

SAPPORO = "011002"  # not in the cast


def _schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def _vendor_events(operator: CreatedOperator, action: str) -> list[PlatformEvent]:
    return list(
        PlatformEvent.objects.filter(
            action=action, actor_kind="vendor", actor_id=str(operator.user.pk), ip="127.0.0.1"
        )
    )


@pytest.fixture
def sapporo(db: None) -> Iterator[Municipality]:
    """A municipality outside the cast, provisioned for one test and decommissioned after."""
    municipality = municipality_provision(
        code=SAPPORO,
        subdomain="sapporo",
        admin_email="admin@sapporo.example.jp",
        actor=Actor.system("tests"),
    ).municipality
    yield municipality
    _decommission_if_live(SAPPORO)


def _decommission_if_live(code: str) -> None:
    connection.set_schema_to_public()
    municipality = Municipality.objects.filter(code=code).first()
    if municipality and municipality.status != Municipality.Status.DECOMMISSIONED:
        municipality_decommission(
            municipality=municipality, confirmation=code, actor=Actor.system("tests")
        )


def test_the_list_shows_every_municipality_and_counts_only(
    operator_client: ClientType, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with schema_context(tenant_a.schema_name):
        User.objects.create_user(
            "hanako.yamada", email="hanako.yamada@city.kodaira.example.jp", password="x" * 12
        )
    municipality_stats_refresh(tenant_a.pk)

    page = operator_client.get("/").content.decode()
    for member in (tenant_a, tenant_b):
        assert member.code in page
        assert member.name in page
        assert member.prefecture in page
        assert f"http://{member.get_primary_domain().domain}/" in page
    assert "稼働中" in page
    assert "職員アカウント" in page
    assert re.search(r"<dt>職員アカウント</dt><dd>1</dd>", page)
    assert "時点" in page  # "as of" the refresh
    assert "未集計" in page  # B was never counted
    # Nothing personal: not the staff member, not the first admin the service invited.
    for personal in ("hanako", "yamada", "admin@kodaira.example.jp", "admin@chiyoda.example.jp"):
        assert personal not in page


def test_the_list_searches_by_code_or_name(
    operator_client: ClientType, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    by_name = operator_client.get("/", {"q": "小平"}).content.decode()
    assert tenant_a.code in by_name and tenant_b.code not in by_name
    by_code = operator_client.get("/", {"q": "1310"}).content.decode()
    assert tenant_b.code in by_code and tenant_a.code not in by_code
    nothing = operator_client.get("/", {"q": "存在しない市"}).content.decode()
    assert "該当する市区町村はありません。" in nothing
    # By its reading, in hiragana, katakana or half-width (小平市: こだいらし), and the
    # code in full width.
    for typed in ("こだいら", "コダイラ", "ｺﾀﾞｲﾗ", "１３２１"):
        found = operator_client.get("/", {"q": typed}).content.decode()
        assert tenant_a.code in found and tenant_b.code not in found, typed


def test_an_operator_provisions_a_municipality_from_the_page(
    operator_client: ClientType, operator: CreatedOperator
) -> None:
    form = operator_client.get("/municipalities/new/").content.decode()
    assert '<label for="id_code">' in form
    # The login mode says what each one means for the municipality, before it is chosen.
    assert "あとから変えられません" in form and "印刷・郵送し" in form
    typed = {
        "code": "０１１００２",  # full width, as typed with the Japanese input on
        "name": "",
        "subdomain": "Sapporo",
        "admin_email": "first.admin@city.sapporo.example.jp",
        "login_mode": Municipality.LoginMode.VOUCHER_DOB,
    }
    # First what would be made, read before anything is: nothing is created yet.
    shown = operator_client.post("/municipalities/new/", typed).content.decode()
    preview = shown.split('id="provision-preview"')[1].split("</dl>")[0]
    assert "北海道 札幌市" in preview and SAPPORO in preview
    assert "http://sapporo.localhost/" in preview and "voucher_dob" not in preview
    assert "接種券番号＋生年月日" in preview
    assert 'id="cannot-change"' in shown
    assert not Municipality.objects.filter(code=SAPPORO).exists()
    # Back to the form, as typed.
    again = operator_client.post("/municipalities/new/", {**typed, "edit": "1"}).content.decode()
    assert 'value="Sapporo"' in again and 'id="provision-preview"' not in again
    assert not Municipality.objects.filter(code=SAPPORO).exists()
    response = operator_client.post("/municipalities/new/", {**typed, "confirmed": "1"})
    try:
        assert response.status_code == 200
        page = response.content.decode()
        municipality = Municipality.objects.get(code=SAPPORO)
        assert municipality.name == "札幌市"  # from the national list
        assert municipality.prefecture == "北海道"
        assert municipality.login_mode == Municipality.LoginMode.VOUCHER_DOB
        assert _schema_exists(municipality.schema_name)
        assert "http://sapporo.localhost/" in page
        assert "http://sapporo.localhost/console/" in page
        setup = re.search(r"http://sapporo\.localhost/console/setup/([^/<\s]+)/", page)
        assert setup, "the single-use setup link is on the page"
        assert "一度だけ表示されます" in page
        (event,) = _vendor_events(operator, "municipality.provisioned")
        assert event.target_id == str(municipality.pk)
        # The token is shown once and kept nowhere in the clear.
        with schema_context(municipality.schema_name):
            from booking.models import StaffInvitation

            invitation = StaffInvitation.objects.get()
            assert setup.group(1) not in invitation.token_hash
        assert setup.group(1) not in operator_client.get("/").content.decode()
    finally:
        _decommission_if_live(SAPPORO)
    assert not _schema_exists(f"m{SAPPORO}")


def test_a_code_already_registered_is_a_clear_error(
    operator_client: ClientType, tenant_a: Municipality
) -> None:
    before = Municipality.objects.count()
    response = operator_client.post(
        "/municipalities/new/",
        {
            "code": tenant_a.code,
            "subdomain": "kodaira2",
            "admin_email": "someone@example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_CODE,
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"市区町村コード {tenant_a.code}（{tenant_a.name}）は既に登録されています" in page
    assert 'role="alert"' in page
    assert Municipality.objects.count() == before
    assert not Domain.objects.filter(domain="kodaira2.localhost").exists()


def test_a_name_other_than_the_national_lists_is_refused_naming_the_expected_one(
    operator_client: ClientType,
) -> None:
    response = operator_client.post(
        "/municipalities/new/",
        {
            "code": SAPPORO,
            "name": "小平市",
            "subdomain": "sapporo",
            "admin_email": "someone@example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_CODE,
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"市区町村コード {SAPPORO} は全国の一覧では「札幌市」です" in page
    assert 'role="alert"' in page
    assert not Municipality.objects.filter(code=SAPPORO).exists()


def test_a_wrong_check_digit_is_refused_with_the_japanese_message_on_the_field(
    operator_client: ClientType,
) -> None:
    response = operator_client.post(
        "/municipalities/new/",
        {
            "code": "011001",
            "subdomain": "sapporo",
            "admin_email": "someone@example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_CODE,
        },
    )
    page = response.content.decode()
    assert "市区町村コードの検査数字（6桁目）が正しくありません。" in page
    assert 'id="id_code_error"' in page
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="id_code"', page) or re.search(
        r'<input[^>]*id="id_code"[^>]*aria-invalid="true"', page
    )
    assert not Municipality.objects.filter(code="011001").exists()


def test_a_subdomain_too_long_is_refused_in_words_not_cut(
    operator_client: ClientType,
) -> None:
    form = operator_client.get("/municipalities/new/").content.decode()
    field = re.search(r'<input[^>]*name="subdomain"[^>]*>', form)
    assert field and "maxlength" not in field.group(0)
    typed = "hinohara-village-tokyo-very-long-name"
    response = operator_client.post(
        "/municipalities/new/",
        {
            "code": "133078",
            "subdomain": typed,
            "admin_email": "someone@example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_CODE,
            "confirmed": "1",
        },
    )
    page = response.content.decode()
    assert "サブドメインは32文字以内で入力してください（入力は37文字です）。" in page
    assert not Municipality.objects.filter(code="133078").exists()


def test_a_reserved_subdomain_is_refused_by_the_service(operator_client: ClientType) -> None:
    response = operator_client.post(
        "/municipalities/new/",
        {
            "code": SAPPORO,
            "subdomain": "platform",
            "admin_email": "someone@example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_CODE,
        },
    )
    assert "サブドメイン「platform」は予約されています。" in response.content.decode()
    assert not Municipality.objects.filter(code=SAPPORO).exists()


def test_suspend_and_resume_ask_for_confirmation_and_go_through_the_service(
    operator_client: ClientType, operator: CreatedOperator, tenant_b: Municipality
) -> None:
    confirm = operator_client.get(f"/municipalities/{tenant_b.code}/suspend/")
    assert confirm.status_code == 200
    assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.ACTIVE

    no_reason = operator_client.post(f"/municipalities/{tenant_b.code}/suspend/", {"reason": ""})
    assert no_reason.status_code == 200
    assert 'id="id_reason_error"' in no_reason.content.decode()
    assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.ACTIVE
    # The reason stays in the trail for good: a resident's identifier is refused.
    for slip in (
        "住民 ０１２３４５６７８９ から通報",
        "電話 090-1234-5678 から",
        "通報者 taro@example.jp",
    ):
        named = operator_client.post(f"/municipalities/{tenant_b.code}/suspend/", {"reason": slip})
        assert "個人を特定できる情報は書かないでください" in named.content.decode()
        assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.ACTIVE

    response = operator_client.post(
        f"/municipalities/{tenant_b.code}/suspend/", {"reason": "契約手続き中"}
    )
    assert response.status_code == 302
    assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.SUSPENDED
    detail = operator_client.get(response["Location"]).content.decode()
    assert "停止中" in detail and "理由：契約手続き中" in detail  # why, and since when
    # The suspend page of a suspended municipality offers nothing to press.
    page = operator_client.get(f"/municipalities/{tenant_b.code}/suspend/").content.decode()
    assert "停止できません" in page and 'name="reason"' not in page
    (suspended,) = _vendor_events(operator, "municipality.suspended")
    assert suspended.details["reason"] == "契約手続き中"

    # Suspending twice is refused by the service, and says so.
    again = operator_client.post(
        f"/municipalities/{tenant_b.code}/suspend/", {"reason": "二度目"}, follow=True
    )
    assert "この操作はできません" in again.content.decode()

    assert operator_client.get(f"/municipalities/{tenant_b.code}/resume/").status_code == 200
    assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.SUSPENDED
    response = operator_client.post(f"/municipalities/{tenant_b.code}/resume/")
    assert response.status_code == 302
    assert Municipality.objects.get(pk=tenant_b.pk).status == Municipality.Status.ACTIVE
    assert len(_vendor_events(operator, "municipality.resumed")) == 1
    page = operator_client.get(f"/municipalities/{tenant_b.code}/resume/").content.decode()
    assert "再開する必要はありません" in page and "<button" not in page.split("<h1>")[1]


def test_an_operator_sets_a_municipality_s_waiting_room_rate(
    operator_client: ClientType, operator: CreatedOperator, tenant_b: Municipality, settings
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 1200
    cache.clear()  # no queue left by another test
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    assert "1分あたり1,200人（プラットフォームの既定）" in detail
    # Where its data is, and that its own key is made (the tests' provider is the local one).
    assert f'専用のデータベース領域 <span class="mono">{tenant_b.schema_name}</span>' in detail
    assert "ap-northeast-1" in detail
    key = detail.split('id="key-status">')[1].split("</dd>")[0]
    assert key.startswith("この市区町村専用のデータ鍵を作成済み（開発用のローカルの鍵")
    form = operator_client.get(f"/municipalities/{tenant_b.code}/waiting-room/").content.decode()
    assert "プラットフォームの既定（1分あたり1,200人）に従います" in form
    assert "コールセンター" in form  # the console is never held back: the page says so

    for value, message in [
        ("abc", "数字（整数）で入力してください"),
        ("-5", "0以上の数を入力してください"),
        ("100001", "100000以下の数を入力してください"),
    ]:
        refused = operator_client.post(
            f"/municipalities/{tenant_b.code}/waiting-room/", {"per_minute": value}
        )
        page = refused.content.decode()
        assert refused.status_code == 200 and message in page, value
        assert 'id="id_per_minute_error"' in page  # the error is tied to its field
    assert Municipality.objects.get(pk=tenant_b.pk).waiting_room_per_minute is None

    response = operator_client.post(
        f"/municipalities/{tenant_b.code}/waiting-room/", {"per_minute": "３００"}
    )
    assert response.status_code == 302
    assert Municipality.objects.get(pk=tenant_b.pk).waiting_room_per_minute == 300
    detail = operator_client.get(response["Location"]).content.decode()
    assert "待合室の受け入れ数を変更しました" in detail
    assert "1分あたり300人" in detail and "プラットフォームの既定）" not in detail
    (changed,) = _vendor_events(operator, "municipality.waiting_room_changed")
    assert changed.details == {"from": None, "to": 300}
    assert "いま待っている住民はいません。" in detail
    # A rush: 600 residents queued at 300 a minute, by the resident pages (in the
    # municipality's schema); the page, in the public one, shows the queue, counts only.
    now = time.time()
    with schema_context(tenant_b.schema_name):
        for _ in range(600):
            queue_join(tenant_b.schema_name, now=now, per_second=5.0, horizon=3600)
    for page in (
        operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode(),
        operator_client.get(f"/municipalities/{tenant_b.code}/waiting-room/").content.decode(),
    ):
        assert "いま約600人が待っています（最後の方のご案内まで約2分）。" in page

    operator_client.post(f"/municipalities/{tenant_b.code}/waiting-room/", {"per_minute": "0"})
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    assert re.search(r"<dt>待合室</dt><dd>使わない ", detail)
    operator_client.post(f"/municipalities/{tenant_b.code}/waiting-room/", {"per_minute": ""})
    assert Municipality.objects.get(pk=tenant_b.pk).waiting_room_per_minute is None
    assert [
        event.details["to"]
        for event in PlatformEvent.objects.filter(
            action="municipality.waiting_room_changed"
        ).order_by("seq")
    ] == [300, 0, None]


def test_a_decommissioned_municipality_s_rate_is_not_changed(
    operator_client: ClientType, tenant_b: Municipality
) -> None:
    Municipality.objects.filter(pk=tenant_b.pk).update(status=Municipality.Status.DECOMMISSIONED)
    with pytest.raises(tenants_services.ProvisioningError, match="廃止された市区町村"):
        tenants_services.municipality_waiting_room_set(
            municipality=tenant_b, per_minute=10, actor=Actor.system("tests")
        )
    assert Municipality.objects.get(pk=tenant_b.pk).waiting_room_per_minute is None


def test_a_decommission_stopped_half_way_is_resumed_from_the_console(
    operator_client: ClientType,
    operator: CreatedOperator,
    sapporo: Municipality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(schema_name: str) -> int:
        raise OSError("storage unavailable")

    Municipality.objects.filter(pk=sapporo.pk).update(status=Municipality.Status.SUSPENDED)
    with monkeypatch.context() as patch:
        patch.setattr(tenants_services, "tenant_files_delete", unavailable)
        stopped = operator_client.post(
            f"/municipalities/{SAPPORO}/decommission/", {"confirmation": SAPPORO}
        )
    assert stopped.status_code == 200
    page = stopped.content.decode()
    assert "データの削除が途中で止まりました" in page
    assert "廃止処理を再開する" in page  # the same page offers to finish
    sapporo.refresh_from_db()
    assert sapporo.status == Municipality.Status.DECOMMISSIONED
    assert _schema_exists(sapporo.schema_name)

    detail = operator_client.get(f"/municipalities/{SAPPORO}/").content.decode()
    assert "廃止処理が途中で止まっています" in detail
    assert "破棄済み（この市区町村のデータは、もう誰も読めません）" in detail
    assert f"/municipalities/{SAPPORO}/decommission/" in detail

    response = operator_client.post(
        f"/municipalities/{SAPPORO}/decommission/", {"confirmation": SAPPORO}
    )
    assert response.status_code == 302
    assert not _schema_exists(sapporo.schema_name)
    detail = operator_client.get(response["Location"]).content.decode()
    assert "廃止処理が途中で止まっています" not in detail
    assert "/decommission/" not in detail
    assert len(_vendor_events(operator, "tenant_key.destroyed")) == 1
    (finished,) = _vendor_events(operator, "municipality.decommissioned")
    assert finished.details["resumed"] is True


def test_decommissioning_needs_the_code_typed(
    operator_client: ClientType, operator: CreatedOperator, sapporo: Municipality
) -> None:
    # In use: never destroyed from here; suspended first.
    detail = operator_client.get(f"/municipalities/{SAPPORO}/").content.decode()
    assert "/decommission/" not in detail
    live = operator_client.get(f"/municipalities/{SAPPORO}/decommission/").content.decode()
    assert 'id="still-live"' in live and "<form" not in live.split("<h1>")[1]
    refused = operator_client.post(
        f"/municipalities/{SAPPORO}/decommission/", {"confirmation": SAPPORO}
    )
    assert refused.status_code == 409 and 'id="still-live"' in refused.content.decode()
    sapporo.refresh_from_db()
    assert sapporo.status == Municipality.Status.ACTIVE and sapporo.wrapped_data_key
    assert _vendor_events(operator, "tenant_key.destroyed") == []

    Municipality.objects.filter(pk=sapporo.pk).update(status=Municipality.Status.SUSPENDED)
    detail = operator_client.get(f"/municipalities/{SAPPORO}/").content.decode()
    assert f"/municipalities/{SAPPORO}/decommission/" in detail
    explain = operator_client.get(f"/municipalities/{SAPPORO}/decommission/").content.decode()
    assert "元に戻せません" in explain
    assert "暗号鍵を破棄" in explain
    # What goes, in counts.
    assert "削除されるもの（件数）" in explain and 'class="stats"' in explain
    assert 'id="still-live"' not in explain

    wrong = operator_client.post(
        f"/municipalities/{SAPPORO}/decommission/", {"confirmation": "132110"}
    )
    assert wrong.status_code == 200
    page = wrong.content.decode()
    assert f"確認のため市区町村コード（{SAPPORO}）を正しく入力してください。" in page
    assert 'id="id_confirmation_error"' in page
    sapporo.refresh_from_db()
    assert sapporo.status == Municipality.Status.SUSPENDED
    assert sapporo.wrapped_data_key
    assert _schema_exists(sapporo.schema_name)

    response = operator_client.post(
        f"/municipalities/{SAPPORO}/decommission/", {"confirmation": SAPPORO}
    )
    assert response.status_code == 302
    sapporo.refresh_from_db()
    assert sapporo.status == Municipality.Status.DECOMMISSIONED
    assert bytes(sapporo.wrapped_data_key) == b""
    assert sapporo.key_destroyed_at is not None
    assert not _schema_exists(sapporo.schema_name)
    assert not Domain.objects.filter(tenant=sapporo).exists()
    detail = operator_client.get(response["Location"]).content.decode()
    assert "廃止" in detail
    # Its data is gone: the page no longer names a schema for it.
    assert "削除済み（廃止のため）" in detail and sapporo.schema_name not in detail
    assert len(_vendor_events(operator, "tenant_key.destroyed")) == 1
    assert len(_vendor_events(operator, "municipality.decommissioned")) == 1
    # Nothing more can be done to it from the console.
    assert "/decommission/" not in detail
    assert (
        "既に廃止されています"
        in operator_client.get(f"/municipalities/{SAPPORO}/decommission/").content.decode()
    )
    for action in ("waiting-room", "suspend", "admin-invitation"):
        page = operator_client.get(f"/municipalities/{SAPPORO}/{action}/").content.decode()
        assert "<button" not in page.split("<h1>")[1], action


def test_an_unknown_code_is_not_found(operator_client: ClientType) -> None:
    assert operator_client.get("/municipalities/999999/").status_code == 404
    assert (
        operator_client.post("/municipalities/999999/suspend/", {"reason": "x"}).status_code == 404
    )


def test_with_redis_unreachable_the_municipality_s_page_says_newcomers_are_held(
    operator_client: ClientType, tenant_b: Municipality, settings
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 1200
    redis_at(settings, closed_port())
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/")
    assert detail.status_code == 200
    assert "Redis に接続できないため、待合室は新しく来た住民の順番を受け付けず" in (
        detail.content.decode()
    )


def test_a_lost_first_admin_link_is_reissued_until_the_admin_has_set_up(
    operator_client: ClientType, operator: CreatedOperator, tenant_b: Municipality
) -> None:
    from django.contrib.auth.hashers import make_password

    from booking.models import StaffInvitation
    from booking.services.staff import (
        InvitationRefused,
        staff_invitation_accept,
        staff_invitation_open,
    )

    base = f"/municipalities/{tenant_b.code}/"
    with schema_context(tenant_b.schema_name):
        StaffInvitation.objects.all().delete()
    assert "最初の管理者を招待し直す" in operator_client.get(base).content.decode()
    first = operator_client.post(f"{base}admin-invitation/", {"admin_email": "admin@b.example.jp"})
    second = operator_client.post(f"{base}admin-invitation/", {"admin_email": "Admin@B.example.jp"})
    tokens = [
        re.search(r"/console/setup/([^/<\s]+)/", page.content.decode()).group(1)  # type: ignore[union-attr]
        for page in (first, second)
    ]
    assert (
        "一度だけ表示されます" in second.content.decode()
        and "まで有効です" in second.content.decode()
    )
    with schema_context(tenant_b.schema_name):
        with pytest.raises(InvitationRefused):
            staff_invitation_open(token=tokens[0])  # the link before stops working
        assert staff_invitation_open(token=tokens[1]).email == "admin@b.example.jp"
        staff_invitation_accept(
            token=tokens[1], password_hash=make_password("x" * 16), totp_key="00" * 20
        )
    assert len(_vendor_events(operator, "municipality.admin_reinvited")) == 2
    # Once the admin has set up, their colleagues are invited from the console.
    assert "最初の管理者を招待し直す" not in operator_client.get(base).content.decode()
    page = operator_client.get(f"{base}admin-invitation/").content.decode()
    assert "既に管理者がいます" in page and 'name="admin_email"' not in page
    refused = operator_client.post(f"{base}admin-invitation/", {"admin_email": "x@b.example.jp"})
    assert "既に管理者がいます" in refused.content.decode()
    with schema_context(tenant_b.schema_name):
        assert not StaffInvitation.objects.filter(email="x@b.example.jp").exists()


def test_a_lone_admin_locked_out_is_sent_a_reset_link_the_operator_never_sees(
    operator_client: ClientType, operator: CreatedOperator, tenant_b: Municipality, mailoutbox
) -> None:
    """The municipality's only admin forgot the password or lost the phone: nobody in the
    console can issue a reset link, so the operator has one e-mailed to the admin's own
    address, and is shown no link. While another admin can sign in, that admin does it."""
    from django.contrib.auth.hashers import make_password

    from booking.models import StaffMember
    from booking.services.staff import staff_invitation_open, staff_invite

    def account(email: str, role: str) -> StaffMember:
        from booking.services.staff import staff_invitation_accept

        issued = staff_invite(email=email, role=role, invited_by=None, actor=Actor.system("t"))
        return staff_invitation_accept(
            token=issued.token, password_hash=make_password("x" * 16), totp_key="00" * 20
        )

    base = f"/municipalities/{tenant_b.code}/"
    with schema_context(tenant_b.schema_name):
        lone = account("chief@b.example.jp", "admin")
        account("clerk@b.example.jp", "call_centre")
    assert (
        "ただ一人の管理者がログインできなくなったとき" in operator_client.get(base).content.decode()
    )
    url = f"{base}admin-recovery/"
    unchecked = operator_client.post(url, {"email": "chief@b.example.jp"})
    assert unchecked.status_code == 400 and "チェックを入れてください" in unchecked.content.decode()
    clerk = operator_client.post(url, {"email": "clerk@b.example.jp", "confirmed": "on"})
    assert "管理者に、このメールアドレスのアカウントはありません" in clerk.content.decode()
    assert mailoutbox == []

    sent = operator_client.post(url, {"email": "Chief@b.example.jp", "confirmed": "on"})
    assert sent.status_code == 302
    shown = operator_client.get(sent["Location"]).content.decode()
    assert "chief@b.example.jp に再設定リンクを送りました" in shown
    assert "/console/setup/" not in shown
    (mail,) = mailoutbox
    assert mail.to == ["chief@b.example.jp"] and "職員アカウントの再設定" in mail.subject
    token = re.search(r"/console/setup/([^/\s]+)/", mail.body).group(1)  # type: ignore[union-attr]
    with schema_context(tenant_b.schema_name):
        assert staff_invitation_open(token=token).resets_id == lone.pk
    assert _vendor_events(operator, "municipality.admin_reset_sent")[-1].details["sent"] is True

    with schema_context(tenant_b.schema_name):
        account("deputy@b.example.jp", "admin")
    refused = operator_client.post(url, {"email": "chief@b.example.jp", "confirmed": "on"})
    assert "ほかにログインできる管理者が1人います" in refused.content.decode()
    assert len(mailoutbox) == 1


def test_codes_typed_in_full_width_digits_are_read_as_digits() -> None:
    from controlplane.forms import DecommissionForm, ProvisionForm

    form = ProvisionForm(
        data={
            "code": "０１１００２",
            "name": "",
            "subdomain": "sapporo",
            "admin_email": "a@sapporo.example.jp",
            "login_mode": Municipality.LoginMode.VOUCHER_DOB,
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["code"] == SAPPORO
    confirm = DecommissionForm(data={"confirmation": "４７３８２１"})
    assert confirm.is_valid() and confirm.cleaned_data["confirmation"] == "473821"


def test_a_municipality_in_incident_mode_says_since_when(
    operator_client: ClientType, operator: CreatedOperator, tenant_b: Municipality
) -> None:
    from audit import record

    with schema_context("public"):
        Municipality.objects.filter(pk=tenant_b.pk).update(status=Municipality.Status.INCIDENT)
        record(
            action="municipality.incident_started",
            actor=Actor.system("municipal-console staff:5"),
            target=tenant_b,
        )
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    since = detail.split('id="incident-since">')[1].split("</span>")[0]
    assert "から（市区町村の管理者が開始" in since and "年" in since
    with schema_context("public"):
        Municipality.objects.filter(pk=tenant_b.pk).update(status=Municipality.Status.ACTIVE)
    assert (
        'id="incident-since"'
        not in operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    )
