"""Structured logs: a JSON line per record with its request or task and tenant, audit lines
marked as such, and nothing personal in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from audit.services import audit_record
from booking.models import (
    AgePhase,
    BookingPolicy,
    RegistryImport,
    Slot,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.services.booking import booking_cancel, booking_create
from booking.services.registry_import import (
    registry_import_apply,
    registry_import_confirm,
    registry_import_parse,
    registry_import_upload,
)
from sesshu import logs
from sesshu.celery import app
from tenants.models import Municipality
from tenants.services import municipality_provision
from tests.conftest import host_of

RESIDENT = {
    "voucher_number": "4000000017",
    "name": "青木 まり子",
    "kana": "アオキ マリコ",
    "birth_date": "1948-04-01",
    "wareki": "昭和23年4月1日",
    "phone": "090-3141-5926",
    "email": "mariko.aoki@example.jp",
    "address": "札幌市中央区北一条西2-1",
}


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict[str, Any]]:
        # Every line must be one JSON object: json.loads raises on anything else.
        parsed = [json.loads(line) for line in self.text.splitlines()]
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == logger]

    def assert_nothing_of(self, *values: str) -> None:
        for value in values:
            assert value not in self.text, value
            assert json.dumps(value)[1:-1] not in self.text, value  # nor escaped


def _configured_handler() -> logging.StreamHandler[Any]:
    """The handler the LOGGING setting put on the root logger (not a test double)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and isinstance(
            handler.formatter, logs.JsonFormatter
        ):
            return handler
    raise AssertionError("LOGGING did not configure the JSON handler on the root logger")


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = _configured_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield Captured(stream)
    finally:
        handler.setStream(previous)  # type: ignore[arg-type]


@app.task(name="tests.sesshu.log_probe")
def log_probe() -> str:
    logging.getLogger("tests.probe").info("probe ran")
    return "done"


# --- Requests ------------------------------------------------------------------------------


def test_a_request_to_a_municipality_logs_its_request_id_and_code(
    tenant_a: Municipality, captured: Captured
) -> None:
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    access = captured.of("sesshu.access")
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == request_id
    assert line["tenant"] == "132110"
    assert line["log_type"] == "access"
    assert line["level"] == "INFO"
    assert line["http"]["method"] == "GET"
    assert line["http"]["path"] == "/"
    assert line["http"]["status"] == response.status_code
    assert line["http"]["host_kind"] == "resident"
    assert isinstance(line["http"]["duration_ms"], float)
    logged_at = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(timezone.now() - logged_at) < timedelta(minutes=1)


def test_the_control_plane_is_logged_as_platform(db: None, captured: Captured) -> None:
    response = Client(HTTP_HOST="platform.localhost").get("/")
    (line,) = captured.of("sesshu.access")
    assert line["tenant"] == "platform"
    assert line["http"]["host_kind"] == "platform"
    assert line["request_id"] == response["X-Request-ID"]


def test_the_console_is_its_own_host_kind(tenant_a: Municipality, captured: Captured) -> None:
    Client(HTTP_HOST=host_of(tenant_a)).get("/console/login/")
    (line,) = captured.of("sesshu.access")
    assert (line["tenant"], line["http"]["host_kind"]) == ("132110", "console")
    assert line["http"]["route"] == "console/login/"


def test_an_unknown_host_has_a_request_id_but_no_tenant(db: None, captured: Captured) -> None:
    response = Client(HTTP_HOST="nowhere.localhost").get("/")
    assert response.status_code == 404
    for line in captured.lines:
        assert "tenant" not in line
        assert line["request_id"] == response["X-Request-ID"]


def test_every_line_of_a_request_carries_its_request_id_and_tenant(
    tenant_a: Municipality, captured: Captured
) -> None:
    # Refused for want of a CSRF token: audited inside the request, and a warning logged.
    client = Client(HTTP_HOST=host_of(tenant_a), enforce_csrf_checks=True)
    response = client.post("/i18n/setlang/", {"language": "en"})
    assert response.status_code == 403
    lines = captured.lines
    assert {line["logger"] for line in lines} >= {"sesshu.audit", "sesshu.access"}
    for line in lines:
        assert line["request_id"] == response["X-Request-ID"]
        assert line["tenant"] == "132110"
    (audit,) = captured.of("sesshu.audit")
    assert audit["log_type"] == "audit"
    assert audit["audit"]["action"] == "access.refused"


@pytest.mark.parametrize(
    "incoming",
    ["3f2a9c1e-8b7d-4e6f-a5c4-0123456789ab", "7d0e4c1b9a8f4e2d8c6b5a4f3e2d1c0b", "req-abc.DEF_ghi"],
)
def test_a_sane_incoming_request_id_is_used_and_echoed(
    db: None, captured: Captured, incoming: str
) -> None:
    response = Client(HTTP_HOST="platform.localhost", HTTP_X_REQUEST_ID=incoming).get("/")
    assert response["X-Request-ID"] == incoming
    assert captured.of("sesshu.access")[0]["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "09031415926",  # a phone number
        "090-3141-5926",
        "4000000017",  # a voucher number
        "1948-04-01",
        "mariko.aoki@example.jp",
        "aoki-09031415926",
        "x" * 65,
        "short",
        "two words here",
        "line\nINFO forged",
        "青木まり子",
    ],
)
def test_an_insane_incoming_request_id_is_replaced(
    db: None, captured: Captured, incoming: str
) -> None:
    response = Client(HTTP_HOST="platform.localhost", HTTP_X_REQUEST_ID=incoming).get("/")
    generated = response["X-Request-ID"]
    assert generated != incoming and len(generated) == 32
    assert captured.of("sesshu.access")[0]["request_id"] == generated
    assert incoming not in captured.text


def test_django_request_logging_prints_no_body_or_query_string(
    tenant_a: Municipality, captured: Captured, settings
) -> None:
    settings.ROOT_URLCONF = "tests.sesshu.urls_boom"  # raises with the posted values inside
    client = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    posted = {k: RESIDENT[k] for k in ("voucher_number", "name", "birth_date", "phone")}
    response = client.post(
        f"/book?voucher_number={RESIDENT['voucher_number']}&tel={RESIDENT['phone']}", posted
    )
    assert response.status_code == 500
    (error,) = captured.of("django.request")
    assert error["message"] == "Internal Server Error: /book"
    assert "ValueError: no slot for" in error["exception"]
    assert 'File "' in error["exception"]  # frames stay readable
    (access,) = captured.of("sesshu.access")
    assert access["http"]["path"] == "/book" and access["http"]["status"] == 500
    captured.assert_nothing_of(*posted.values(), "voucher_number=", "tel=", "小平", "花子")


def test_a_not_found_line_has_no_query_string(tenant_a: Municipality, captured: Captured) -> None:
    Client(HTTP_HOST=host_of(tenant_a)).get(
        "/nothing-here/", {"phone": RESIDENT["phone"], "q": "青木"}
    )
    assert captured.of("django.request")[0]["message"] == "Not Found: /nothing-here/"
    captured.assert_nothing_of(RESIDENT["phone"], "青木", "phone=")


def test_probes_are_neither_logged_nor_given_a_request_id(db: None, captured: Captured) -> None:
    response = Client(HTTP_HOST="10.0.0.12").get("/healthz")
    assert "X-Request-ID" not in response
    assert captured.of("sesshu.access") == []


# --- Outside requests: tasks and the audit trail ---------------------------------------------


def test_a_line_outside_any_request_or_task_has_no_tenant(db: None, captured: Captured) -> None:
    logging.getLogger("tests.plain").warning("nothing around")
    (line,) = captured.of("tests.plain")
    assert line["message"] == "nothing around"
    assert line["log_type"] == "app"
    assert not {"tenant", "request_id", "task_name", "task_id"} & set(line)


def test_a_celery_tasks_lines_carry_the_task_and_its_tenant(
    tenant_a: Municipality, captured: Captured
) -> None:
    with tenant_context(tenant_a):
        result = log_probe.delay()  # eager: no broker in tests
    assert result.get() == "done"
    (line,) = captured.of("tests.probe")
    assert line["tenant"] == "132110"
    assert line["task_name"] == "tests.sesshu.log_probe"
    assert line["task_id"] == result.id
    # The context ends with the task.
    logging.getLogger("tests.probe").info("after")
    assert "task_name" not in captured.of("tests.probe")[-1]


def test_a_task_in_the_public_schema_is_platform(db: None, captured: Captured) -> None:
    log_probe.delay()
    (line,) = captured.of("tests.probe")
    assert line["tenant"] == "platform"


def test_a_task_in_a_bare_schema_context_still_names_its_municipality(
    tenant_b: Municipality, captured: Captured
) -> None:
    with schema_context(tenant_b.schema_name):
        log_probe.delay()
    assert captured.of("tests.probe")[0]["tenant"] == "131016"


def test_a_task_carries_the_request_id_of_the_request_that_queued_it(
    db: None, captured: Captured
) -> None:
    # What the worker receives: the id the publishing process put in the message headers.
    request_id = "5b1f0c8e9d2a4b7c8e6f1a3d5c7b9e0f"
    log_probe.apply(headers={logs.TASK_REQUEST_ID_HEADER: request_id})
    assert captured.of("tests.probe")[0]["request_id"] == request_id


def test_the_request_id_goes_into_the_headers_of_a_queued_task() -> None:
    headers: dict[str, Any] = {}
    token = logs._request_id.set("5b1f0c8e9d2a4b7c8e6f1a3d5c7b9e0f")
    try:
        logs._request_id_to_task(headers=headers)
    finally:
        logs._request_id.reset(token)
    assert headers == {logs.TASK_REQUEST_ID_HEADER: "5b1f0c8e9d2a4b7c8e6f1a3d5c7b9e0f"}


def test_audit_records_are_audit_lines_with_their_hash_intact(
    tenant_a: Municipality, captured: Captured
) -> None:
    with tenant_context(tenant_a):
        event = audit_record(action="tests.logged", actor=Actor(Actor.STAFF, "4321"))
    (line,) = captured.of("sesshu.audit")
    assert line["log_type"] == "audit"
    assert line["message"] == "tests.logged"
    assert line["audit"]["seq"] == event.seq
    assert line["audit"]["actor_id"] == "4321"
    assert line["audit"]["chain"] == tenant_a.schema_name


def test_other_loggers_are_app_lines(db: None, captured: Captured) -> None:
    logging.getLogger("sesshu.booking").info("x")
    logging.getLogger("sesshu.audit.other").info("not the trail")
    assert [line["log_type"] for line in captured.lines] == ["app", "app"]


# --- Masking -------------------------------------------------------------------------------


def test_the_filter_masks_personal_values_in_the_message_and_its_args(
    db: None, captured: Captured
) -> None:
    log = logging.getLogger("tests.masking")
    log.info(
        "resident %s (%s) born %s phone %s mail %s voucher %s",
        RESIDENT["name"],
        RESIDENT["kana"],
        RESIDENT["wareki"],
        RESIDENT["phone"],
        RESIDENT["email"],
        RESIDENT["voucher_number"],
    )
    log.info(f"inline: {RESIDENT['name']} {RESIDENT['birth_date']} {RESIDENT['address']}")
    log.info("voucher %d", int(RESIDENT["voucher_number"]))
    log.info("row %s", {"name": "Mariko Aoki", "phone": "09031415926", "slot": 12})
    log.info("form name=Mariko phone: 09031415926")
    log.info("fields %(email)s", {"email": RESIDENT["email"]})
    lines = captured.of("tests.masking")
    assert lines[0]["message"] == "resident ＊ (＊) born ＊ phone ＊ mail ＊ voucher ＊"
    assert lines[2]["message"] == "voucher ＊"
    assert "'slot': 12" in lines[3]["message"]
    captured.assert_nothing_of(*RESIDENT.values(), "Mariko", "Aoki", "09031415926")


def test_exceptions_and_extras_are_masked_too(db: None, captured: Captured) -> None:
    log = logging.getLogger("tests.masking")
    try:
        raise ValueError(f"duplicate key (phone)=({RESIDENT['phone']}) for {RESIDENT['name']}")
    except ValueError:
        log.exception("import failed")
    log.info("with extras", extra={"phone": "x", "note": RESIDENT["email"], "rows": 3})
    first, second = captured.of("tests.masking")
    assert "ValueError: duplicate key" in first["exception"]
    assert second["phone"] == "[Filtered]"
    assert second["note"] == "＊"
    assert second["rows"] == 3
    captured.assert_nothing_of(RESIDENT["phone"], RESIDENT["name"], RESIDENT["email"])


def test_celery_does_not_log_a_tasks_arguments_or_result(db: None, captured: Captured) -> None:
    context = {
        "id": "3f2a9c1e-8b7d-4e6f-a5c4-0123456789ab",
        "name": "booking.notify",
        "return_value": "'Mariko Aoki'",
        "runtime": 0.1,
    }
    logging.getLogger("celery.app.trace").info(
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        context,
        extra={"data": context},
    )
    (line,) = captured.of("celery.app.trace")
    assert line["message"] == (
        "Task booking.notify[3f2a9c1e-8b7d-4e6f-a5c4-0123456789ab] succeeded in 0.1s: [Filtered]"
    )
    assert "data" not in line
    captured.assert_nothing_of("Mariko")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tel 090-3141-5926.", "tel ＊."),
        ("born 1948/04/01", "born ＊"),
        ("full-width ０９０３１４１５９２６", "full-width ＊"),
        ("〒060-0001 札幌市中央区北一条西2-1 青木様", "＊"),
        ("mail mariko.aoki@example.jp ok", "mail ＊ ok"),
        ("GET /slots/?venue=3&phone=0903 HTTP/1.1", "GET /slots/?＊ HTTP/1.1"),
        ("see https://x.example.jp/b/?tel=0901 ok", "see https://x.example.jp/b/?＊ ok"),
        ("is it open? yes", "is it open? yes"),
        ("slot 12 of 3", "slot 12 of 3"),
        ("id 3f2a9c1e-8b7d-4e6f-a5c4-0123456789ab", "id 3f2a9c1e-8b7d-4e6f-a5c4-0123456789ab"),
        ("password=hunter2 next", "password=＊ next"),
        ('{"email": "a"}', '{"email": ＊}'),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert logs.mask_text(text) == expected


def test_a_huge_message_is_cut_before_it_is_masked(db: None, captured: Captured) -> None:
    logging.getLogger("tests.masking").info("row %s", "a" * 100_000)
    (line,) = captured.of("tests.masking")
    assert len(line["message"]) < 17_000 and line["message"].endswith("[truncated]")


# --- The whole flow ------------------------------------------------------------------------

CSV_HEADER = "接種券番号,宛名番号,氏名,氏名カナ,生年月日,性別,郵便番号,住所,電話番号\r\n"


def _registry_csv() -> bytes:
    row = ",".join(
        [
            RESIDENT["voucher_number"],
            "0012345678",
            RESIDENT["name"],
            RESIDENT["kana"],
            RESIDENT["wareki"],
            "2",
            "060-0001",
            f'"{RESIDENT["address"]}"',
            RESIDENT["phone"],
        ]
    )
    return (CSV_HEADER + row + "\r\n").encode("cp932")


def test_a_whole_booking_flow_logs_nothing_personal(
    db: None, captured: Captured, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # everything any module would say
    admin_email = "admin@sapporo.example.jp"
    try:
        municipality = municipality_provision(
            code="011002",
            subdomain="sapporo",
            admin_email=admin_email,
            actor=Actor.system("tests"),
        ).municipality
        with tenant_context(municipality):
            data = _registry_csv()
            upload = registry_import_upload(
                stream=io.BytesIO(data),
                file_name="registry.csv",
                size=len(data),
                actor=Actor.system("tests"),
                source=RegistryImport.Source.COMMAND,
                enqueue=False,
            )
            registry_import_parse(registry_import_id=upload.pk)
            upload.refresh_from_db()
            registry_import_confirm(
                registry_import=upload, actor=Actor.system("tests"), enqueue=False
            )
            registry_import_apply(registry_import_id=upload.pk)
            voucher = Voucher.objects.get(voucher_number=RESIDENT["voucher_number"])

            now = timezone.now()
            AgePhase.objects.create(name="65歳以上", minimum_age=65, opens_at=now - timedelta(1))
            policy = BookingPolicy.current()
            policy.call_centre_phone = "011-000-0000"
            policy.save()
            product = VaccineProduct.objects.create(
                code="pfizer", name="ファイザー社ワクチン", interval_days=19
            )
            venue = Venue.objects.create(name="中央体育館", area="中央区", address="札幌市")
            venue.products.add(product)
            starts_at = now + timedelta(days=3)
            slot = Slot.objects.create(
                venue=venue,
                product=product,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=30),
                capacity_web=5,
            )

            actor = Actor.resident(voucher.pk)
            booking = booking_create(
                voucher=voucher, slot=slot, channel="web", actor=actor, ip="192.0.2.8"
            )
            booking_cancel(booking=booking, channel="web", actor=actor, ip="192.0.2.8")
            log_probe.delay()
        # The resident's login form, sent with what a resident types (refused or not).
        Client(HTTP_HOST="sapporo.localhost").post(
            f"/login/?voucher={RESIDENT['voucher_number']}",
            {
                "voucher_number": RESIDENT["voucher_number"],
                "birth_date": RESIDENT["birth_date"],
                "code": "ABCD2345",
                "phone": RESIDENT["phone"],
                "email": RESIDENT["email"],
            },
        )
    finally:
        root.setLevel(level)
        connection.set_schema_to_public()
        cache.clear()  # the login throttle's counters

    actions = [line["audit"]["action"] for line in captured.of("sesshu.audit")]
    assert "booking.created" in actions and "booking.cancelled" in actions
    assert captured.of("tests.probe")[0]["tenant"] == "011002"
    (login,) = captured.of("sesshu.access")
    assert (login["tenant"], login["http"]["path"]) == ("011002", "/login/")
    captured.assert_nothing_of(
        *RESIDENT.values(),
        "青木",
        "まり子",
        "アオキ",
        "マリコ",
        "19480401",
        "1948/04/01",
        "09031415926",
        "3141-5926",
        admin_email,
    )
