"""The VRS export page (admin only): a form, then the CSV streamed."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods

from audit import record
from booking.console.access import staff_required
from booking.console.planning.common import ADMIN, JAPAN, actor_of, ip_of, page
from booking.console.planning.forms import VrsExportForm
from booking.console.planning.vrs import (
    VrsQuery,
    vrs_changes_to_fix,
    vrs_counts,
    vrs_csv_stream,
    vrs_unwritable,
)
from booking.services.planning import export_record


@require_http_methods(["GET", "POST"])
@staff_required(ADMIN)
def vrs_export(request: HttpRequest) -> HttpResponse:
    """POST, not GET: an export of residents' records is a deliberate act (CSRF-checked),
    not a link a browser might prefetch."""
    if request.POST.get("action") == "changes_done":
        return _changes_done(request)
    form = VrsExportForm(request.POST or None)
    if request.method == "GET" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        return _page(request, form, status=status)
    data = form.cleaned_data
    municipality = request.tenant  # type: ignore[attr-defined]
    query = VrsQuery(
        first_day=data["first_day"],
        last_day=data["last_day"],
        basis=data["basis"],
        as_of=timezone.now(),
    )
    unwritable = vrs_unwritable(query, data["encoding"])
    if unwritable:
        form.add_error(
            "encoding",
            _(
                "Shift_JIS（CP932）では書けない文字を含む名前があります：%(names)s。"
                "UTF-8で出力するか、記録の表記を訂正してから出力してください"
                "（そのまま出力すると「?」に置き換わります）。"
            )
            % {"names": pgettext("joining items", "、").join(unwritable)},
        )
        return _page(request, form, status=400)
    rows, vouchers = vrs_counts(query)
    export_record(
        kind="vrs",
        actor=actor_of(request),
        ip=ip_of(request),
        details={
            "first_day": query.first_day.isoformat(),
            "last_day": query.last_day.isoformat(),
            "basis": query.basis,
            "as_of": query.as_of.astimezone(JAPAN).isoformat(timespec="seconds"),
            "rows": rows,
            "vouchers": vouchers,
            "encoding": data["encoding"],
        },
    )
    charset = "shift_jis" if data["encoding"] == "cp932" else "utf-8"
    response = StreamingHttpResponse(
        vrs_csv_stream(municipality=municipality, query=query, encoding=data["encoding"]),
        content_type=f"text/csv; charset={charset}",
    )
    filename = f"vrs_{municipality.code}_{query.first_day:%Y%m%d}_{query.last_day:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    # staff_required types views as returning HttpResponse; a streaming one is as good.
    return response  # type: ignore[return-value]


def _page(request: HttpRequest, form: VrsExportForm, *, status: int) -> HttpResponse:
    """The form, and the records corrected or withdrawn after an export held them (their
    voucher numbers are shown: the read is audited with the vouchers, as the export is)."""
    to_fix = vrs_changes_to_fix()
    if to_fix.changes:
        record(
            action="export.vrs_changes_viewed",
            actor=actor_of(request),
            ip=ip_of(request),
            details={"vouchers": sorted({change.voucher_id for change in to_fix.changes})},
        )
    return page(request, "vrs.html", {"form": form, "to_fix": to_fix}, status=status)


def _changes_done(request: HttpRequest) -> HttpResponse:
    """The admin has corrected the listed records in the VRS: the list starts after them."""
    through = request.POST.get("through_seq", "")
    if through.isdigit():
        record(
            action="export.vrs_changes_done",
            actor=actor_of(request),
            ip=ip_of(request),
            details={"through_seq": int(through)},
        )
        messages.success(request, _("VRSで訂正した記録を、一覧から外しました。"))
    return redirect("console:planning:vrs")
