"""The audit trail for auditors and admins (SECURITY.md: breach scope comes from the trail).

Reading the trail changes nothing but the trail itself: each page read is audited
(``trail.viewed``: the conditions, how many records were shown and how many of them had a
sealed call-centre memo opened), as the breach-scope report is (``trail.report_downloaded``),
because both show whose data was read and memos may hold what a caller said.
"""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    QueryDict,
)
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from audit import record
from audit.chain import Actor
from audit.middleware import client_ip
from audit.services import audit_seal_pending, audit_verify
from booking.console.access import staff_required
from booking.console.callcentre.pages import console_page
from booking.console.trail.forms import LOCAL_FORMAT, TrailFilterForm, TrailReportForm
from booking.console.trail.selectors import action_label, trail_note, trail_page, value_name
from booking.models import StaffMember
from booking.services.incident import trail_report_build
from booking.spreadsheet import safe_cell

JAPAN = ZoneInfo("Asia/Tokyo")
Role = StaffMember.Role
auditors = staff_required(Role.AUDITOR, Role.ADMIN)


def _default_report_form() -> TrailReportForm:
    now = timezone.now().astimezone(JAPAN).replace(second=0, microsecond=0)
    # The end is not included and is written to the minute: the minute after this one, so
    # the default report holds what was read up to the moment it is asked for.
    end = now + timedelta(minutes=1)
    return TrailReportForm(
        prefix="report",
        initial={
            "start": (end - timedelta(days=7)).strftime(LOCAL_FORMAT),
            "end": end.strftime(LOCAL_FORMAT),
        },
    )


def _record_read(
    request: HttpRequest, action: str, filters: dict[str, Any], *, rows: int, notes_opened: int
) -> None:
    """A read of the trail, in the trail: who, under which conditions, how many records and
    how many sealed memos were opened."""
    record(
        action=action,
        actor=Actor.staff(request.user),
        ip=client_ip(request),
        details={
            "conditions": [f"{key}={value}" for key, value in sorted(filters.items())],
            "rows": rows,
            "notes_opened": notes_opened,
        },
    )


# The conditions an auditor sends (a resident's voucher number, a member of staff's e-mail)
# are kept in the session under a token, never in a page's address: addresses end up in
# access logs, the WAF's logs and the browser's history (ASVS 14.2.1).
_CONDITIONS = "trail_conditions"
_CONDITIONS_KEPT = 20
_CONDITIONS_LOST = gettext_lazy("絞り込みの条件が見つかりません。もう一度絞り込んでください。")


def _filter_fields(data: QueryDict) -> dict[str, Any]:
    """The conditions given, without the page's place (``before``) and the empty ones."""
    return {
        key: value
        for key, value in data.items()
        if key in TrailFilterForm.base_fields and key != "before" and value
    }


def _conditions_keep(request: HttpRequest, data: QueryDict) -> str:
    kept = request.session.get(_CONDITIONS)
    kept = kept if isinstance(kept, dict) else {}
    token = secrets.token_urlsafe(8)
    # New conditions start at the newest record: the page sent them from may have been an
    # older page (its ``before`` kept in the form), which would hide the newest.
    kept[token] = _filter_fields(data)
    request.session[_CONDITIONS] = dict(list(kept.items())[-_CONDITIONS_KEPT:])
    return token


def _conditions(request: HttpRequest) -> QueryDict | None:
    """The conditions the page or the export is asked with: those kept under the token
    ``f`` (None for a token this session does not hold), with the page's ``before``; or, for
    a link written by hand, the address's own."""
    token = request.GET.get("f")
    if token is None:
        return request.GET
    kept = request.session.get(_CONDITIONS)
    data = kept.get(token) if isinstance(kept, dict) else None
    if not isinstance(data, dict):
        return None
    conditions = QueryDict(mutable=True)
    conditions.update({key: str(value) for key, value in data.items()})
    if request.GET.get("before"):
        conditions["before"] = request.GET["before"]
    return conditions


def _index(
    request: HttpRequest,
    *,
    report_form: TrailReportForm | None = None,
    status: int = 200,
    conditions: QueryDict | None = None,
    token: str = "",
) -> HttpResponse:
    if conditions is None:
        conditions = request.GET
    filter_form = TrailFilterForm(conditions or None)
    # Conditions of which one is wrong list nothing (the form says which), never every
    # record under the others shown as if they applied.
    refused = filter_form.is_bound and not filter_form.is_valid()
    filters = {} if refused else filter_form.filters()
    rows, older = ([], None) if refused else trail_page(**filters)
    if not refused:
        _record_read(
            request,
            "trail.viewed",
            filters,
            rows=len(rows),
            notes_opened=sum(1 for row in rows if row.note),
        )
    named: dict[str, Any] = {"f": token} if token else _filter_fields(conditions)
    context = {
        "filter_form": filter_form,
        "filtered": bool(named),
        "rows": rows,
        "filters_refused": refused,
        "export_query": urlencode(named),
        "next_query": urlencode({**named, "before": older}) if older is not None else "",
        "report_form": report_form or _default_report_form(),
    }
    return console_page(
        request,
        "booking/console/trail/index.html",
        context,
        status=400 if refused and status == 200 else status,
    )


@require_http_methods(["GET", "POST"])
@auditors
def index(request: HttpRequest) -> HttpResponse:
    """The trail, newest first. Conditions are sent (POST) and kept in the session: the page
    they select is asked for by a token (``?f=``)."""
    if request.method == "POST":
        form = TrailFilterForm(request.POST)
        if not form.is_valid():
            return _index(request, conditions=request.POST, status=400)
        if not form.filters():
            return redirect("console:trail:index")
        return redirect(f"{request.path}?f={_conditions_keep(request, request.POST)}")
    conditions = _conditions(request)
    if conditions is None:
        messages.info(request, _CONDITIONS_LOST)
        return redirect("console:trail:index")
    return _index(request, conditions=conditions, token=request.GET.get("f", ""))


EXPORT_HEADER = (
    "番号",
    "日時（日本時間）",
    "操作",
    "操作（記号）",
    "操作した人",
    "対象",
    "内容",
    "メモ",
    "接続元",
)


@require_http_methods(["GET"])
@auditors
def export(request: HttpRequest) -> HttpResponseBase:
    """The records the trail page's conditions select, all of them (the page shows a hundred
    at a time), as a CSV file Excel opens (UTF-8 with a BOM, CRLF; times in Japan's time as
    Excel reads dates): what an auditor found, to keep with the complaint. Audited like a
    page read (``trail.exported``)."""
    conditions = _conditions(request)
    if conditions is None:
        messages.info(request, _CONDITIONS_LOST)
        return redirect("console:trail:index")
    filter_form = TrailFilterForm(conditions or None)
    if filter_form.is_bound and not filter_form.is_valid():
        return _index(request, conditions=conditions, status=400)
    filters = filter_form.filters()
    filters.pop("before", None)
    # Written to a file before anything is sent (in memory while small), inside this
    # request's municipality and role: a page at a time, however many records match.
    output = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    text = io.TextIOWrapper(output, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    rows_written = notes_opened = 0
    before: int | None = None
    while True:
        rows, before = trail_page(**filters, before=before)
        for row in rows:
            rows_written += 1
            notes_opened += bool(row.note)
            target = row.target_label or (
                f"{row.event.target_type}:{row.event.target_id}" if row.event.target_type else ""
            )
            # Each cell as text Excel shows, never runs: a memo or a file name typed as
            # "=…" would otherwise be a formula in the auditor's spreadsheet.
            writer.writerow(
                safe_cell(value)
                for value in (
                    row.event.seq,
                    row.event.occurred_at.astimezone(JAPAN).strftime("%Y/%m/%d %H:%M:%S"),
                    row.label,
                    row.event.action,
                    row.actor_label,
                    target,
                    row.details_text,
                    row.note,
                    row.event.ip or "",
                )
            )
        if before is None:
            break
    text.flush()
    text.detach()
    output.seek(0)
    _record_read(request, "trail.exported", filters, rows=rows_written, notes_opened=notes_opened)
    stamp = timezone.now().astimezone(JAPAN).strftime("%Y%m%d%H%M")
    response = FileResponse(output, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="trail-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _reason_name(action: str, reason: str) -> str:
    return value_name(action, "reason", reason)


@require_POST
@auditors
def report(request: HttpRequest) -> HttpResponseBase:
    form = TrailReportForm(request.POST, prefix="report")
    if not form.is_valid():
        return _index(request, report_form=form, status=400)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    built = trail_report_build(
        staff=request.staff,  # type: ignore[attr-defined]
        start=start,
        end=end,
        ip=client_ip(request),
        describe=action_label,
        describe_reason=_reason_name,
        note=trail_note,
    )
    # Streamed from the report's file (in memory while small), which it closes at the end.
    response = FileResponse(built.csv, content_type="text/csv; charset=utf-8")
    name = (
        f"access-report-{start.astimezone(JAPAN):%Y%m%d%H%M}-{end.astimezone(JAPAN):%Y%m%d%H%M}.csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET"])
@auditors
def verify(request: HttpRequest) -> HttpResponse:
    audit_seal_pending()  # events committed but not yet sealed are checked too
    return console_page(request, "booking/console/trail/verify.html", {"report": audit_verify()})
