"""The registry-import form and page context shared by the vendor's control plane and the
municipal console: two entry points, one service, one way of showing an import."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.chain import Actor
from booking.models import RegistryImport
from booking.registry.fields import FIELD_LABELS, IDENTITY_COLUMNS, REQUIRED_FIELDS
from booking.services.registry_import import (
    ERROR_ROWS_SHOWN,
    RegistryImportRefused,
    addresses_elsewhere,
    full_list_without_rows,
    registry_import_cancel,
    registry_import_confirm,
    registry_import_progress,
    withdrawals_to_acknowledge,
)
from booking.services.registry_upkeep import registry_import_resume


class RegistryUploadForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # no colon after Japanese labels
        super().__init__(*args, **kwargs)

    file = forms.FileField(
        label=_("接種券の名簿（CSVファイル）"),
        help_text=_(
            "Shift_JIS（CP932）またはUTF-8のCSV。"
            "1行目は見出し（接種券番号、氏名、氏名カナ、生年月日 など）。"
        ),
    )
    encoding = forms.ChoiceField(
        label=_("文字コード"),
        choices=[("", _("自動判定")), ("cp932", "Shift_JIS (CP932)"), ("utf-8", "UTF-8")],
        required=False,
    )
    full_list = forms.BooleanField(
        label=_("全件リストとして取り込む"),
        help_text=_(
            "このファイルにない接種券を「対象外（転出・死亡等）」にします。削除はせず、予約も取り消しません。"
        ),
        required=False,
    )


class ColumnMappingForm(forms.Form):
    """One text box per registry field: the header the municipality's files give it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for field, label in FIELD_LABELS.items():
            self.fields[field] = forms.CharField(
                label=label,
                required=False,
                max_length=80,  # the service allows 40 and says so in Japanese
                help_text=_("必須の列です。") if field in REQUIRED_FIELDS else "",
            )


def _identity_columns_missing(registry_import: RegistryImport) -> str:
    """The columns that tell who a caller is, by their headers, when the file has no address
    (the call centre then asks for the phone number, or the voucher's): "" otherwise."""
    missing = registry_import.columns_missing or []
    if "address" not in missing:
        return ""
    return "、".join(FIELD_LABELS[field] for field in IDENTITY_COLUMNS if field in missing)


def _columns_emptied(registry_import: RegistryImport) -> str:
    """The columns the file lacks, by their headers, when it changes vouchers already held:
    those vouchers' values of them are emptied (a file meant to hold them all): "" otherwise."""
    if not (registry_import.counts or {}).get("changed"):
        return ""
    return "、".join(FIELD_LABELS[field] for field in registry_import.columns_missing or [])


def import_context(registry_import: RegistryImport) -> dict[str, Any]:
    stalled = registry_import.stalled
    working = not stalled and registry_import.status in (
        RegistryImport.Status.UPLOADED,
        RegistryImport.Status.PARSING,
        RegistryImport.Status.APPLYING,
    )
    return {
        "registry_import": registry_import,
        "progress": registry_import_progress(registry_import),
        "working": working,
        "stalled": stalled,
        # An interrupted apply has written part of its rows: it can only be finished.
        "can_cancel_stalled": stalled
        and registry_import.status
        in (RegistryImport.Status.UPLOADED, RegistryImport.Status.PARSING),
        "errors": list(registry_import.errors.all()[:ERROR_ROWS_SHOWN]),
        "columns_missing": _identity_columns_missing(registry_import),
        "columns_emptied": _columns_emptied(registry_import),
        "errors_shown": ERROR_ROWS_SHOWN,
        "can_confirm": registry_import.status == RegistryImport.Status.PREVIEWED
        and registry_import.confirmed_at is None,
        # A full list that would withdraw every voucher, or many of them (the number is
        # acknowledged with the confirmation).
        "without_rows": full_list_without_rows(registry_import),
        # Nothing new or changed, and no full list: confirming would write nothing.
        "nothing_to_write": not registry_import.full_list
        and not (registry_import.counts or {}).get("new")
        and not (registry_import.counts or {}).get("changed"),
        "withdrawals_to_acknowledge": withdrawals_to_acknowledge(registry_import),
        # Addresses naming another municipality: perhaps the wrong file.
        "elsewhere": addresses_elsewhere(registry_import),
    }


def registry_import_decision(
    request: HttpRequest, registry_import: RegistryImport, actor: Actor, ip: str | None
) -> None:
    """The buttons of an import's page (confirm, resume, cancel), the same on both entry
    points; what happened, or why not, is told as a message."""
    decision = request.POST.get("decision")
    try:
        if decision == "confirm":
            acknowledged = request.POST.get("withdrawals_acknowledged", "")
            registry_import_confirm(
                registry_import=registry_import,
                actor=actor,
                ip=ip,
                withdrawals_acknowledged=int(acknowledged) if acknowledged.isdigit() else 0,
            )
            registry_import.refresh_from_db(fields=["status"])
            if registry_import.status == RegistryImport.Status.DONE:  # applied at once
                messages.success(request, gettext("取込が完了しました。"))
            else:
                messages.success(request, gettext("取込を開始しました。"))
        elif decision == "resume":
            registry_import_resume(registry_import=registry_import, actor=actor, ip=ip)
            messages.success(request, gettext("取込を再開しました。"))
        elif decision == "cancel":
            registry_import_cancel(registry_import=registry_import, actor=actor, ip=ip)
            messages.success(request, gettext("取込を取り消しました。"))
        else:
            messages.error(request, gettext("操作を選んでください。"))
    except RegistryImportRefused as exc:
        messages.error(request, str(exc))
