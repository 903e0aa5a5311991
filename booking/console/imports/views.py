"""Registry imports in the municipal console: the same form, service and status partial as
the vendor's control plane, plus what only the municipality may take out — the error file
(rows as sent, with residents' data) and the one-time activation codes for the print vendor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.chain import Actor
from audit.middleware import client_ip
from booking.console.access import staff_required
from booking.models import Booking, RegistryImport, StaffMember, Voucher
from booking.models.bookings import booking_number_display
from booking.registry.fields import FIELD_LABELS
from booking.registry_forms import (
    ColumnMappingForm,
    RegistryUploadForm,
    import_context,
    registry_import_decision,
)
from booking.selectors.registry import withdrawn_vouchers_with_bookings
from booking.services.registry_import import (
    RegistryImportRefused,
    error_file_expired,
    registry_import_codes_file,
    registry_import_error_file,
    registry_import_upload,
)
from booking.services.registry_import.counts import CHANGED_SHOWN, changed_vouchers
from booking.services.registry_mapping import (
    RegistryColumnMappingInvalid,
    registry_column_mapping_get,
    registry_column_mapping_save,
)

Admin = StaffMember.Role.ADMIN
RECENT_IMPORTS = 20
WITHDRAWN_SHOWN = 500
_CHARSETS = {"cp932": "Shift_JIS", "utf-8": "UTF-8", "utf-8-sig": "UTF-8"}


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "site_name": request.tenant.name,  # type: ignore[attr-defined]
        "staff": request.staff,  # type: ignore[attr-defined]
        **extra,
    }


def _actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user)


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def imports(request: HttpRequest) -> HttpResponse:
    form = RegistryUploadForm(request.POST or None, request.FILES or None, label_suffix="")
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                registry_import = registry_import_upload(
                    stream=upload,
                    file_name=upload.name,
                    size=upload.size,
                    actor=_actor(request),
                    source=RegistryImport.Source.CONSOLE,
                    full_list=form.cleaned_data["full_list"],
                    encoding=form.cleaned_data["encoding"],
                    ip=client_ip(request),
                )
            except RegistryImportRefused as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("console:imports:detail", pk=registry_import.pk)
    saved = registry_column_mapping_get()
    return render(
        request,
        "booking/console/imports/list.html",
        _context(
            request,
            form=form,
            imports=list(RegistryImport.objects.all()[:RECENT_IMPORTS]),
            mapping=[(FIELD_LABELS[field], header) for field, header in saved.items()],
        ),
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def mapping(request: HttpRequest) -> HttpResponse:
    """The header texts the municipality's files use, saved for every later import."""
    form = ColumnMappingForm(
        request.POST or None, initial=registry_column_mapping_get(), label_suffix=""
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                registry_column_mapping_save(
                    headers=form.cleaned_data, actor=_actor(request), ip=client_ip(request)
                )
            except RegistryColumnMappingInvalid as exc:
                for field, problems in exc.errors.items():
                    for problem in problems:
                        form.add_error(field or None, problem)
            else:
                messages.success(request, _("列の対応付けを保存しました。"))
                return redirect("console:imports:list")
    return render(
        request, "booking/console/imports/mapping.html", _context(request, form=form), status=status
    )


def _withdrawn_with_bookings(registry_import: RegistryImport) -> tuple[list[tuple[str, str]], int]:
    """Voucher and booking numbers of the live bookings this import's withdrawn vouchers
    still hold (nothing else: the municipality follows them up in its own records)."""
    bookings = Booking.objects.filter(
        voucher__in=withdrawn_vouchers_with_bookings(registry_import),
        status__in=Booking.LIVE_STATUSES,
    ).order_by("voucher__voucher_number", "dose")
    rows = [
        (voucher_number, booking_number_display(number))
        for voucher_number, number in bookings.values_list(
            "voucher__voucher_number", "booking_number"
        )[:WITHDRAWN_SHOWN]
    ]
    return rows, bookings.count()


@require_GET
@staff_required(Admin)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    registry_import = get_object_or_404(RegistryImport, pk=pk)
    context = import_context(registry_import)
    done = registry_import.status == RegistryImport.Status.DONE
    withdrawn: list[tuple[str, str]] = []
    withdrawn_total = 0
    withdrawn_numbers: list[str] = []
    if done and registry_import.full_list:
        withdrawn, withdrawn_total = _withdrawn_with_bookings(registry_import)
        # Which vouchers this list withdrew (numbers only): still so, unless a later list
        # listed them again.
        withdrawn_numbers = list(
            Voucher.objects.filter(withdrawn_by=registry_import, status=Voucher.Status.WITHDRAWN)
            .order_by("voucher_number")
            .values_list("voucher_number", flat=True)[:WITHDRAWN_SHOWN]
        )
    # Before confirming: which vouchers change, and in which columns (the municipality's
    # console only: the vendor's page shows the counts).
    changed = changed_vouchers(registry_import) if context["can_confirm"] else []
    return render(
        request,
        "booking/console/imports/detail.html",
        _context(
            request,
            **context,
            done=done,
            # Past its period the file is refused (and soon deleted): offer no dead link.
            error_file_available=bool(registry_import.error_file)
            and not error_file_expired(registry_import),
            codes_available=bool(registry_import.codes_file)
            and registry_import.codes_downloaded_at is None,
            withdrawn=withdrawn,
            withdrawn_total=withdrawn_total,
            withdrawn_numbers=withdrawn_numbers,
            withdrawn_shown=WITHDRAWN_SHOWN,
            changed=changed,
            changed_shown=CHANGED_SHOWN,
        ),
    )


@require_POST
@staff_required(Admin)
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    registry_import = get_object_or_404(RegistryImport, pk=pk)
    registry_import_decision(request, registry_import, _actor(request), client_ip(request))
    return redirect("console:imports:detail", pk=pk)


def _attachment(
    data: bytes | Iterator[bytes], *, file_name: str, content_type: str
) -> HttpResponseBase:
    """A download; bytes handed over as they come are streamed, never held whole."""
    response: HttpResponseBase = (
        HttpResponse(data, content_type=content_type)
        if isinstance(data, bytes)
        else StreamingHttpResponse(data, content_type=content_type)
    )
    response["Content-Disposition"] = content_disposition_header(True, file_name) or ""
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@staff_required(Admin)
def error_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    registry_import = get_object_or_404(RegistryImport, pk=pk)
    try:
        name, data = registry_import_error_file(
            registry_import=registry_import, actor=_actor(request), ip=client_ip(request)
        )
    except RegistryImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("console:imports:detail", pk=pk)
    encoding = registry_import.encoding or registry_import.detected_encoding
    charset = _CHARSETS.get(encoding.lower(), "")
    content_type = f"text/csv; charset={charset}" if charset else "text/csv"
    return _attachment(data, file_name=name, content_type=content_type)


@require_POST
@staff_required(Admin)
def codes_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A POST: the file can be taken once, so no link prefetcher or crawler may take it."""
    registry_import = get_object_or_404(RegistryImport, pk=pk)
    try:
        name, data = registry_import_codes_file(
            registry_import=registry_import, actor=_actor(request), ip=client_ip(request)
        )
    except RegistryImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("console:imports:detail", pk=pk)
    return _attachment(data, file_name=name, content_type="text/csv; charset=UTF-8")
