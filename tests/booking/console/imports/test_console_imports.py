"""Registry imports from the municipal console: the same service as the control plane, plus
the error file and the one-time activation codes, which only the municipality may take."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import (
    Booking,
    RegistryImport,
    Slot,
    StaffMember,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_display, booking_number_new
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import signed_in
from tests.booking.registry_import.conftest import csv_bytes, row
from tests.booking.registry_import.conftest import upload as service_upload

from ..conftest import StaffAccount, events, make_staff

NOT_ADMINS = [StaffMember.Role.VENUE, StaffMember.Role.CALL_CENTRE, StaffMember.Role.AUDITOR]


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1


def upload(client: Client, data: bytes, *, full_list: bool = False):
    form = {
        "file": SimpleUploadedFile("meibo.csv", data, content_type="text/csv"),
        "encoding": "",
    }
    if full_list:
        form["full_list"] = "on"
    return client.post("/console/imports/", form)


def previewed(client: Client, data: bytes, capture, **kwargs: bool) -> str:
    """Upload, let the preview run, and return the import's page address."""
    with capture(execute=True):
        response = upload(client, data, **kwargs)
    assert response.status_code == 302, response.content.decode()
    return response["Location"]


def previewed_with_a_bad_row(client: Client, capture) -> str:
    """Preview a file whose second row has an impossible birth date."""
    bad = row("0000000002", birth="昭和23年2月30日")
    return previewed(client, csv_bytes([row("0000000001"), bad]), capture)


def logged_in_as_role(tenant: Municipality, client: Client, role: str, clock) -> Client:
    account = make_staff(tenant, f"{role}@kodaira.example.jp", role)
    return signed_in(client, account, clock)


def confirm(client: Client, location: str, capture, **extra: str) -> None:
    with capture(execute=True):
        response = client.post(f"{location}decide/", {"decision": "confirm", **extra})
    assert response.status_code == 302


def test_an_admin_previews_and_imports_the_registry(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    listing = client_a.get("/console/imports/").content.decode()
    assert 'enctype="multipart/form-data"' in listing and "csrfmiddlewaretoken" in listing
    location = previewed(
        client_a,
        csv_bytes([row("0000000001"), row("0000000002", birth="昭和23年2月30日")]),
        django_capture_on_commit_callbacks,
    )
    page = client_a.get(location).content.decode()
    assert (
        "確認待ち（まだ取り込んでいません）" in page
        and "存在しない日付です（その月にない日です）" in page
    )
    assert "この内容で取り込む" in page and 'http-equiv="refresh"' not in page
    assert "小平 花子" not in page  # masked, as on the vendor's page
    assert ", Shift_JIS" in page and "cp932" not in page  # the encoding as staff know it
    with tenant_context(tenant_a):
        assert not Voucher.objects.exists()
        registry_import = RegistryImport.objects.get()
        assert registry_import.source == RegistryImport.Source.CONSOLE

    confirm(client_a, location, django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        registry_import.refresh_from_db()
        assert registry_import.status == RegistryImport.Status.DONE
        assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000001"]
        trail = list(
            Event.objects.filter(action__startswith="registry_import.").values_list(
                "action", "actor_kind", "actor_id"
            )
        )
    staff = ("staff", str(admin_a.user_id))
    assert ("registry_import.uploaded", *staff) in trail
    assert ("registry_import.confirmed", *staff) in trail
    listing = client_a.get("/console/imports/").content.decode()
    assert "meibo.csv" in listing and "取込完了" in listing and "自治体管理画面" in listing
    # Rows, then new, changed, unchanged and refused: two imports of one file tell apart.
    assert "<td>2</td>\n    <td>1</td><td>0</td><td>0</td><td>1</td>" in listing


def test_the_page_refreshes_itself_while_the_import_works(
    tenant_a: Municipality, client_a: Client, as_admin: Client
) -> None:
    response = upload(client_a, csv_bytes([row("0000000001")]))  # the preview is not run
    page = client_a.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in page
    assert "<progress" in page and "この内容で取り込む" not in page


def test_an_admin_cancels_a_preview(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    location = previewed(
        client_a, csv_bytes([row("0000000001")]), django_capture_on_commit_callbacks
    )
    client_a.post(f"{location}decide/", {"decision": "cancel"})
    page = client_a.get(location).content.decode()
    assert "取込を取り消しました" in page and "取消" in page
    with tenant_context(tenant_a):
        assert RegistryImport.objects.get().status == RegistryImport.Status.CANCELLED
        assert not Voucher.objects.exists()
    assert events(tenant_a, "registry_import.cancelled")[0].actor_id == str(admin_a.user_id)


def test_a_binary_file_is_refused_on_the_form(
    tenant_a: Municipality, client_a: Client, as_admin: Client
) -> None:
    response = upload(client_a, b"PK\x03\x04" + b"\x00" * 200)
    assert response.status_code == 400 and "Excel" in response.content.decode()
    with tenant_context(tenant_a):
        assert not RegistryImport.objects.exists()


def test_the_error_file_is_downloaded_as_sent_and_audited(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    location = previewed_with_a_bad_row(client_a, django_capture_on_commit_callbacks)
    assert "エラー行のファイルをダウンロード" in client_a.get(location).content.decode()
    response = client_a.get(f"{location}errors/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=Shift_JIS"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    # Streamed: the file is never held whole by the web pod.
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("cp932"))))
    assert lines[0][-1] == "エラー内容"
    assert lines[1][0] == "0000000002" and lines[1][2] == "小平 花子"  # the row as sent
    assert "存在しない日付です（その月にない日です）" in lines[1][-1]
    (downloaded,) = events(tenant_a, "registry_import.error_file_downloaded")
    assert downloaded.actor_kind == "staff" and downloaded.actor_id == str(admin_a.user_id)
    assert downloaded.details == {"file_name": "meibo.csv", "invalid": 1}


def test_the_activation_codes_are_downloaded_once(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock,
    django_capture_on_commit_callbacks,
) -> None:
    Municipality.objects.filter(pk=tenant_a.pk).update(
        login_mode=Municipality.LoginMode.VOUCHER_CODE
    )
    signed_in(client_a, admin_a, clock)
    location = previewed(
        client_a,
        csv_bytes([row("0000000001"), row("0000000002")]),
        django_capture_on_commit_callbacks,
    )
    confirm(client_a, location, django_capture_on_commit_callbacks)
    page = client_a.get(location).content.decode()
    assert "一度だけダウンロードできます" in page and "印刷業者" in page
    assert 'id="codes-download"' in page
    # A GET (a link prefetcher, a crawler) never takes the file.
    assert client_a.get(f"{location}codes/").status_code == 405

    response = client_a.post(f"{location}codes/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert f'filename="activation-codes-{tenant_a.code}-' in response["Content-Disposition"]
    # Streamed: read after the request has left the municipality's schema.
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == ["接種券番号", "認証コード"]
    assert sorted(line[0] for line in lines[1:]) == ["0000000001", "0000000002"]
    assert all(len(line[1]) == 9 and line[1][4] == "-" for line in lines[1:])

    again = client_a.post(f"{location}codes/")
    assert again.status_code == 302
    after = client_a.get(again["Location"]).content.decode()
    assert "既にダウンロードされたか" in after and "ダウンロード済みです" in after
    assert 'id="codes-download"' not in after
    (downloaded,) = events(tenant_a, "registry_import.codes_downloaded")
    with tenant_context(tenant_a):
        ids = sorted(Voucher.objects.values_list("pk", flat=True))
    assert downloaded.actor_id == str(admin_a.user_id)
    assert downloaded.details == {
        "file_name": "meibo.csv",
        "codes": 2,
        "voucher_ranges": [ids],
        "residents": 2,
    }


def test_a_full_list_import_lists_withdrawn_vouchers_that_still_hold_a_booking(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    first = previewed(
        client_a,
        csv_bytes([row("0000000001"), row("0000000002"), row("0000000003")]),
        django_capture_on_commit_callbacks,
    )
    confirm(client_a, first, django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        product = VaccineProduct.objects.create(code="pfizer", name="ファイザー", interval_days=19)
        venue = Venue.objects.create(name="小平市役所", area="中央", address="小川町")
        start = timezone.now() + timedelta(days=3)
        slot = Slot.objects.create(
            venue=venue, product=product, starts_at=start, ends_at=start + timedelta(minutes=30)
        )
        held = Booking.objects.create(
            booking_number=booking_number_new(),
            voucher=Voucher.objects.get(voucher_number="0000000002"),
            slot=slot,
            dose=1,
            channel="web",
            booked_through="web",
            actor_kind="system",
        )
    second = previewed(
        client_a,
        csv_bytes([row("0000000001")]),
        django_capture_on_commit_callbacks,
        full_list=True,
    )
    # Two of three: most of the vouchers, so their number is acknowledged.
    assert 'name="withdrawals_acknowledged" value="2"' in client_a.get(second).content.decode()
    confirm(client_a, second, django_capture_on_commit_callbacks, withdrawals_acknowledged="2")
    page = client_a.get(second).content.decode()
    assert "対象外になった接種券のうち、予約が残っているもの" in page
    assert "0000000002" in page and booking_number_display(held.booking_number) in page
    assert "0000000003" not in page.split("予約が残っているもの")[1]  # withdrawn, no booking
    assert "小平 花子" not in page and "コダイラ" not in page
    # Which vouchers the list withdrew, by number, with or without a booking.
    numbers = page.split('id="withdrawn-numbers"')[1].split("</ul>")[0]
    assert "0000000002" in numbers and "0000000003" in numbers and "0000000001" not in numbers


@pytest.mark.parametrize("role", NOT_ADMINS)
def test_only_admins_import(tenant_a: Municipality, client_a: Client, role: str, clock) -> None:
    with tenant_context(tenant_a):
        registry_import = service_upload(csv_bytes([row("0000000001")]))
    logged_in_as_role(tenant_a, client_a, role, clock)
    base = f"/console/imports/{registry_import.pk}/"
    assert client_a.get("/console/imports/").status_code == 403
    assert upload(client_a, csv_bytes([row("0000000009")])).status_code == 403
    assert client_a.get(base).status_code == 403
    assert client_a.post(f"{base}decide/", {"decision": "cancel"}).status_code == 403
    assert client_a.get(f"{base}errors/").status_code == 403
    assert client_a.post(f"{base}codes/").status_code == 403
    with tenant_context(tenant_a):
        assert RegistryImport.objects.count() == 1
        assert RegistryImport.objects.get().status == RegistryImport.Status.UPLOADED
    refused = events(tenant_a, "console.access_refused")
    assert len(refused) == 6 and {event.details["reason"] for event in refused} == {"role"}
    assert "/console/imports/" not in client_a.get("/console/").content.decode()


def test_admins_of_a_cannot_open_bs_imports(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    client_b: Client,
    admin_a: StaffAccount,
    clock,
) -> None:
    with tenant_context(tenant_b):
        of_b = service_upload(csv_bytes([row("0000000001")]))
    signed_in(client_a, admin_a, clock)
    # The id names nothing in A's schema.
    assert client_a.get(f"/console/imports/{of_b.pk}/").status_code == 404
    assert client_a.get(f"/console/imports/{of_b.pk}/errors/").status_code == 404
    assert client_a.post(f"/console/imports/{of_b.pk}/codes/").status_code == 404
    # A's session on B's host is no session.
    client_b.cookies["sessionid"] = client_a.cookies["sessionid"].value
    response = client_b.get(f"/console/imports/{of_b.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    with tenant_context(tenant_b):
        assert RegistryImport.objects.get().status == RegistryImport.Status.UPLOADED


def test_the_admins_menu_links_the_imports_and_reception(
    client_a: Client, as_admin: Client
) -> None:
    home = client_a.get("/console/").content.decode()
    assert 'href="/console/imports/"' in home and 'href="/console/reception/"' in home


def test_an_interrupted_import_is_shown_as_such_and_resumed_from_its_page(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    response = upload(client_a, csv_bytes([row("0000000001")]))  # the preview is not run
    location = response["Location"]
    with tenant_context(tenant_a):
        registry_import = RegistryImport.objects.get()
        RegistryImport.objects.filter(pk=registry_import.pk).update(
            status=RegistryImport.Status.PARSING,
            heartbeat_at=timezone.now() - timedelta(minutes=30),
        )
    page = client_a.get(location).content.decode()
    assert "中断" in page and "再開する" in page and 'value="cancel"' in page
    # The vendor's command is the vendor's page's: the municipality's staff have no shell.
    assert f"--resume {registry_import.pk}" not in page
    assert 'http-equiv="refresh"' not in page
    listing = upload(client_a, csv_bytes([row("0000000002")]))
    assert listing.status_code == 400
    assert "中断した取込（meibo.csv）があります" in listing.content.decode()
    assert "中断" in client_a.get("/console/imports/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client_a.post(f"{location}decide/", {"decision": "resume"})
    page = client_a.get(location).content.decode()
    assert "取込を再開しました" in page and "確認待ち（まだ取り込んでいません）" in page
    (resumed,) = events(tenant_a, "registry_import.resumed")
    assert (resumed.actor_kind, resumed.actor_id) == ("staff", str(admin_a.user_id))


def test_an_admin_saves_the_column_mapping_and_the_next_upload_uses_it(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    assert "列の対応付けを変更する" in client_a.get("/console/imports/").content.decode()
    page = client_a.get("/console/imports/mapping/").content.decode()
    assert 'name="voucher_number"' in page and "接種券番号" in page
    refused = client_a.post(
        "/console/imports/mapping/", {"voucher_number": "番号", "address_number": "番号"}
    )
    assert refused.status_code == 400
    assert "「接種券番号」と同じ見出しです" in refused.content.decode()
    response = client_a.post(
        "/console/imports/mapping/", {"voucher_number": "接種券No", "birth_date": "誕生日"}
    )
    assert response.status_code == 302
    listing = client_a.get("/console/imports/").content.decode()
    assert "列の対応付けを保存しました" in listing and "接種券No" in listing and "誕生日" in listing
    header = "接種券No,漢字氏名,カナ氏名,誕生日\r\n"
    data = (header + "0000000001,小平 花子,コダイラ ハナコ,昭和23年4月1日\r\n").encode("cp932")
    location = previewed(client_a, data, django_capture_on_commit_callbacks)
    assert "確認待ち（まだ取り込んでいません）" in client_a.get(location).content.decode()
    (saved,) = events(tenant_a, "registry_import.mapping_saved")
    assert (saved.actor_kind, saved.actor_id) == ("staff", str(admin_a.user_id))


def test_a_column_mapping_is_the_municipalitys_own(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock,
) -> None:
    from booking.models import RegistryColumnMapping

    signed_in(client_a, admin_a, clock)
    client_a.post("/console/imports/mapping/", {"voucher_number": "接種券No"})
    with tenant_context(tenant_a):
        assert RegistryColumnMapping.objects.get().headers == {"voucher_number": "接種券No"}
    with tenant_context(tenant_b):
        assert not RegistryColumnMapping.objects.exists()
    anonymous = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    response = anonymous.get("/console/imports/mapping/")
    assert response.status_code == 302 and "/console/login/" in response["Location"]


@pytest.mark.parametrize("role", NOT_ADMINS)
def test_only_admins_change_the_column_mapping(
    tenant_a: Municipality, client_a: Client, role: str, clock
) -> None:
    logged_in_as_role(tenant_a, client_a, role, clock)
    assert client_a.get("/console/imports/mapping/").status_code == 403
    assert client_a.post("/console/imports/mapping/", {"name": "x"}).status_code == 403
    with tenant_context(tenant_a):
        from booking.models import RegistryColumnMapping

        assert not RegistryColumnMapping.objects.exists()


def test_an_expired_error_file_is_no_longer_offered(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    location = previewed_with_a_bad_row(client_a, django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        RegistryImport.objects.update(error_file_expires_at=timezone.now() - timedelta(hours=1))
    assert "エラー行のファイルをダウンロード" not in client_a.get(location).content.decode()
    response = client_a.get(f"{location}errors/", follow=True)
    assert "保存期間が過ぎたため削除されました" in response.content.decode()
    assert not events(tenant_a, "registry_import.error_file_downloaded")


def test_the_preview_names_the_vouchers_that_change_and_which_columns_not_the_values(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
    django_capture_on_commit_callbacks,
) -> None:
    first = [row("0000000001"), row("0000000002"), row("0000000003")]
    confirm(
        client_a,
        previewed(client_a, csv_bytes(first), django_capture_on_commit_callbacks),
        django_capture_on_commit_callbacks,
    )
    with tenant_context(tenant_a):
        Voucher.objects.filter(voucher_number="0000000003").update(status=Voucher.Status.WITHDRAWN)
    again = [
        row("0000000001"),  # unchanged
        row("0000000002", birth="昭和24年5月6日", phone="090-9999-0000"),
        row("0000000003"),  # back from withdrawn
        row("0000000004"),  # new
    ]
    location = previewed(client_a, csv_bytes(again), django_capture_on_commit_callbacks)
    page = client_a.get(location).content.decode()
    table = page.split('id="changed-vouchers"')[1].split("</table>")[0]
    assert "0000000001" not in table and "0000000004" not in table
    second = table.split("0000000002")[1].split("</tr>")[0]
    assert "生年月日" in second and "電話番号" in second and "氏名" not in second
    assert "対象外から対象に戻る" in table.split("0000000003")[1].split("</tr>")[0]
    assert "1949" not in page and "9999" not in page  # which columns, never the values


def test_a_file_without_addresses_is_said_before_it_is_imported(
    tenant_a: Municipality, client_a: Client, as_admin: Client, django_capture_on_commit_callbacks
) -> None:
    """A registry without the address column imports (only four columns are required), but
    the page says so: the call centre's identity check then asks for the phone number."""
    header = "接種券番号,氏名,氏名カナ,生年月日,電話番号\r\n"
    data = csv_bytes(["0000000011,東 一,アズマ ハジメ,S24.4.1,03-1234-5678"], header=header)
    location = previewed(client_a, data, django_capture_on_commit_callbacks)
    page = client_a.get(location).content.decode()
    notice = page.split('id="columns-missing"')[1].split("</p>")[0]
    assert "次の列がありません：住所、郵便番号" in notice and "電話番号（" in notice
    # A file with its addresses says nothing of the kind.
    full = previewed(client_a, csv_bytes([row("0000000012")]), django_capture_on_commit_callbacks)
    assert 'id="columns-missing"' not in client_a.get(full).content.decode()


def test_a_file_without_some_columns_says_the_vouchers_it_changes_lose_them(
    tenant_a: Municipality, client_a: Client, as_admin: Client, django_capture_on_commit_callbacks
) -> None:
    first = previewed(client_a, csv_bytes([row("0000000021")]), django_capture_on_commit_callbacks)
    assert 'id="columns-emptied"' not in client_a.get(first).content.decode()  # all new
    confirm(client_a, first, django_capture_on_commit_callbacks)
    header = "接種券番号,氏名,氏名カナ,生年月日,電話番号\r\n"
    data = csv_bytes(
        ["0000000021,小平 花子,コダイラ ハナコ,昭和23年4月1日,090-1234-5678"], header=header
    )
    location = previewed(client_a, data, django_capture_on_commit_callbacks)
    page = client_a.get(location).content.decode()
    notice = page.split('id="columns-emptied"')[1].split("</p>")[0]
    assert "住所" in notice and "郵便番号" in notice and "（1件）" in notice
    assert "空欄になります" in notice


def test_a_file_with_nothing_to_write_is_not_offered_to_be_imported(
    tenant_a: Municipality, client_a: Client, as_admin: Client, django_capture_on_commit_callbacks
) -> None:
    """Every row invalid, or the header alone: the page says so and offers only to cancel."""
    bad = row("0000000031", birth="昭和23年2月30日")
    location = previewed(client_a, csv_bytes([bad]), django_capture_on_commit_callbacks)
    page = client_a.get(location).content.decode()
    assert 'id="import-nothing-to-write"' in page and 'id="import-confirm"' not in page
    assert 'id="import-cancel"' in page
    # A file with a row to import is offered as before.
    fine = previewed(client_a, csv_bytes([row("0000000032")]), django_capture_on_commit_callbacks)
    assert 'id="import-confirm"' in client_a.get(fine).content.decode()
