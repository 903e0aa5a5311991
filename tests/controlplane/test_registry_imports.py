from __future__ import annotations

import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import RegistryImport, Voucher
from tenants.models import Municipality
from tests.booking.registry_import.conftest import csv_bytes, row


def _upload(client, code: str, data: bytes, **extra: object):
    return client.post(
        f"/municipalities/{code}/registry/",
        {
            "file": SimpleUploadedFile("meibo.csv", data, content_type="text/csv"),
            "encoding": "",
            **extra,
        },
    )


def test_a_vendor_previews_then_imports_on_a_municipalitys_behalf(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(
            operator_client,
            tenant_a.code,
            csv_bytes([row("0000000001"), row("0000000002", birth="昭和23年2月30日")]),
        )
    assert response.status_code == 302
    page = operator_client.get(response["Location"])
    text = page.content.decode()
    assert (
        "確認待ち（まだ取り込んでいません）" in text
        and "存在しない日付です（その月にない日です）" in text
    )
    # Masked values only: the resident's name never reaches the vendor's page, nor does the
    # message repeat the month and day of the birth date it refuses.
    assert "小平 花子" not in text and "コダイラ" not in text and "2月30日" not in text
    with tenant_context(tenant_a):
        registry_import = RegistryImport.objects.get()
        assert not Voucher.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"{response['Location']}decide/", {"decision": "confirm"})
    with tenant_context(tenant_a):
        registry_import.refresh_from_db()
        assert registry_import.status == RegistryImport.Status.DONE
        assert list(Voucher.objects.values_list("voucher_number", flat=True)) == ["0000000001"]
        actors = set(
            Event.objects.filter(action__startswith="registry_import.").values_list(
                "actor_kind", flat=True
            )
        )
    assert "vendor" in actors
    done = operator_client.get(response["Location"]).content.decode()
    assert "自治体の管理画面から" in done
    # The list of imports says what each did, in counts.
    listed = operator_client.get(f"/municipalities/{tenant_a.code}/registry/").content.decode()
    row_text = re.sub(r"\s+", "", listed.split("<tbody>")[1].split("</tr>")[0])
    assert "<td>2</td><td>1</td><td>0</td><td>1</td><td>—</td>" in row_text


def test_a_decision_that_is_none_of_the_buttons_changes_nothing(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(operator_client, tenant_a.code, csv_bytes([row("0000000001")]))
    answer = operator_client.post(
        f"{response['Location']}decide/", {"decision": "confirmm"}, follow=True
    )
    assert "操作を選んでください" in answer.content.decode()
    with tenant_context(tenant_a):
        assert RegistryImport.objects.get().status == RegistryImport.Status.PREVIEWED


def test_a_full_list_withdrawing_many_asks_for_their_number_on_the_page(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    everyone = [row(f"{n:010d}") for n in range(1, 101)]
    for rows, full_list in ((everyone, ""), (everyone[:40], "on")):
        with django_capture_on_commit_callbacks(execute=True):
            response = _upload(operator_client, tenant_a.code, csv_bytes(rows), full_list=full_list)
        if not full_list:
            with django_capture_on_commit_callbacks(execute=True):
                operator_client.post(f"{response['Location']}decide/", {"decision": "confirm"})
    page = operator_client.get(response["Location"]).content.decode()
    assert "いま有効な接種券 100件のうち 60件が対象外になります" in page
    assert 'name="withdrawals_acknowledged" value="60"' in page
    refused = operator_client.post(
        f"{response['Location']}decide/", {"decision": "confirm"}, follow=True
    )
    assert "60件と多いため" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            f"{response['Location']}decide/",
            {"decision": "confirm", "withdrawals_acknowledged": "60"},
        )
    with tenant_context(tenant_a):
        assert Voucher.objects.filter(status=Voucher.Status.ACTIVE).count() == 40


def test_a_file_without_its_header_row_shows_none_of_the_first_residents_data(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    """The first row is a resident's, where the header should be: the message says so, and
    neither the page nor the stored message repeats that resident's values."""
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    data = csv_bytes([row("0000000001", name="岡田 さくら", kana="オカダ サクラ")], header="")
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(operator_client, tenant_a.code, data)
    text = operator_client.get(response["Location"]).content.decode()
    assert "見出しではなくデータ（番号や日付）が入っています" in text
    with tenant_context(tenant_a):
        message = RegistryImport.objects.get().message
    for personal in ("岡田", "オカダ", "0000000001", "090-1234-5678", "小川町", "187-0031"):
        assert personal not in text and personal not in message


def test_another_municipalitys_list_is_pointed_out_by_its_addresses(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    """小平市's page, with a file of 旭川市's residents: the vendor sees no address, so the
    preview says which municipality the addresses name before anything is confirmed."""
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    asahikawa = [row(f"{n:010d}", address=f"北海道旭川市{n}条通8丁目") for n in range(1, 9)]
    kodaira = [row("0000000009"), row("0000000010", address="小川町1-2")]
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(operator_client, tenant_a.code, csv_bytes(asahikawa + kodaira))
    text = operator_client.get(response["Location"]).content.decode()
    warning = text.split('id="import-addresses-elsewhere"')[1].split("</div>")[0]
    assert "確認した住所 10件のうち 8件が、ほかの市区町村（北海道旭川市など）" in warning
    assert "旭川市1条通" not in text  # the place, never an address
    with tenant_context(tenant_a):
        previewed = Event.objects.filter(action="registry_import.previewed").latest("seq")
        assert previewed.details["places_elsewhere"] == ["北海道旭川市"]
    # Its own residents' list (one of them in a care home elsewhere) is not asked about.
    operator_client.post(f"{response['Location']}decide/", {"decision": "cancel"})
    own = [row(f"{n:010d}") for n in range(1, 20)] + [row("0000000020", address="群馬県前橋市1")]
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(operator_client, tenant_a.code, csv_bytes(own))
    assert (
        'id="import-addresses-elsewhere"'
        not in operator_client.get(response["Location"]).content.decode()
    )


def test_a_binary_upload_is_refused_with_a_message(operator_client, tenant_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    response = _upload(operator_client, tenant_a.code, b"PK\x03\x04" + b"\x00" * 200)
    assert response.status_code == 200
    assert "Excel" in response.content.decode()
    with tenant_context(tenant_a):
        assert not RegistryImport.objects.exists()


def test_anonymous_and_the_decommissioned_are_refused(platform_client, tenant_a) -> None:
    response = platform_client.get(f"/municipalities/{tenant_a.code}/registry/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_vendor_resumes_an_interrupted_apply(
    operator_client, tenant_a: Municipality, settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(operator_client, tenant_a.code, csv_bytes([row("0000000001")]))
    with tenant_context(tenant_a):
        RegistryImport.objects.update(
            status=RegistryImport.Status.APPLYING,
            confirmed_at=timezone.now() - timedelta(minutes=20),
            heartbeat_at=timezone.now() - timedelta(minutes=20),
        )
    page = operator_client.get(response["Location"]).content.decode()
    assert "中断" in page and "再開する" in page
    assert "manage.py vouchers_import --tenant" in page  # the vendor may resume it by command
    assert 'value="cancel"' not in page  # part of it is written: it can only be finished
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"{response['Location']}decide/", {"decision": "resume"})
    with tenant_context(tenant_a):
        assert RegistryImport.objects.get().status == RegistryImport.Status.DONE
        assert Voucher.objects.count() == 1
        (resumed,) = Event.objects.filter(action="registry_import.resumed")
    assert resumed.actor_kind == "vendor"
