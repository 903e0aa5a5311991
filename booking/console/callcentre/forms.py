from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.services.callcentre import (
    IDENTITY_ITEMS,
    NOTE_MAX_LENGTH,
    AskedBy,
    CancelGivenReason,
    RevealReason,
)


class SearchForm(ConsoleForm):
    q = forms.CharField(
        label=_("接種券番号・氏名（カナ）・電話番号"),
        max_length=100,
        error_messages={
            "required": _("接種券番号、氏名（カナ）、電話番号のいずれかを入力してください。")
        },
        help_text=_(
            "どれか1つで検索できます。氏名はカタカナかひらがなで、姓と名の両方を（空白は無視。姓だけでは見つかりません）。"
            "氏名と電話番号（または生年月日。例：コダイラ ハナコ 昭和23年4月1日）を空白で区切って"
            "両方入れると、両方に一致する人だけを表示します。"
        ),
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "spellcheck": "false",
                "size": 30,
                # search-box.js selects a search shown again, for the next one to replace.
                "data-select-on-load": True,
            }
        ),
    )


class RevealForm(ConsoleForm):
    reason = forms.ChoiceField(
        label=_("表示する理由"),
        choices=RevealReason.choices,
        initial=RevealReason.IDENTITY_CHECK,
    )
    note = forms.CharField(
        label=_("メモ（任意。「その他」のときは必須）"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        help_text=_("暗号化して監査記録に残ります。"),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class CancelForm(ConsoleForm):
    """Who asked the call centre to cancel, and why (as far as they said)."""

    asked_by = forms.ChoiceField(
        label=_("お申し出の方"),
        choices=AskedBy.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("お申し出の方（ご本人か、ご家族・代理の方か）を選んでください。")
        },
    )
    given_reason = forms.ChoiceField(
        label=_("取り消す理由（伺った範囲で）"),
        choices=CancelGivenReason.choices,
        initial=CancelGivenReason.NOT_SAID,
        required=False,
        widget=forms.RadioSelect,
        help_text=_("理由を無理に伺う必要はありません。監査記録に残ります。"),
    )
    from_slot = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def clean_given_reason(self) -> str:
        return self.cleaned_data["given_reason"] or CancelGivenReason.NOT_SAID


_IDENTITY_LABELS = {
    "name": _("氏名が登録内容と一致した"),
    "birth_date": _("生年月日が登録内容と一致した"),
    "address": _("住所が登録内容と一致した"),
    "phone": _("電話番号が登録内容と一致した（住所の登録がないため）"),
    "voucher_number": _("お手元の接種券の接種券番号が一致した（住所・電話番号の登録がないため）"),
}


class _FocusedRadioSelect(forms.RadioSelect):
    """Radio buttons whose first has the focus when the page opens."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        if option["index"] == "0":
            option["attrs"]["autofocus"] = True
        return option


class IdentityForm(ConsoleForm):
    """Who is on the phone, and a box per item the resident reads back (``items``: the
    service's identity_items for the page; every item when reading what was ticked, which
    the service then judges)."""

    asked_by = forms.ChoiceField(
        label=_("お電話の方"),
        choices=AskedBy.choices,
        # Required by the browser for "all matched" and by the service; never for "an item
        # did not match" (formnovalidate): who called is kept then only when said.
        required=False,
        widget=_FocusedRadioSelect(attrs={"required": True}),
        help_text=_("ご家族などが代わりにお電話のときも、読み上げていただくのはご本人の内容です。"),
    )

    def __init__(self, *args: Any, items: Sequence[str] = IDENTITY_ITEMS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in items:
            # Each box is required by the browser for "all matched" (Enter in a box sends
            # that), never for "an item did not match" (formnovalidate). The focus starts on
            # who is on the phone, asked before anything is read back.
            self.fields[f"{item}_matches"] = forms.BooleanField(
                label=_IDENTITY_LABELS[item],
                required=False,
                widget=forms.CheckboxInput(attrs={"required": True}),
            )

    def matched(self) -> set[str]:
        return {
            name.removesuffix("_matches")
            for name, ticked in self.cleaned_data.items()
            if name.endswith("_matches") and ticked
        }

    def caller(self) -> str:
        """The caller chosen ("" for none, or a value not offered)."""
        return str(self.cleaned_data.get("asked_by") or "")


class SlotChoiceForm(forms.Form):
    slot = forms.IntegerField(min_value=1)
    # Changing a booking: the slot it had when the page was shown.
    from_slot = forms.IntegerField(min_value=1, required=False)
    # Booking the series together: the next dose's slot, booked with ``slot``.
    second_slot = forms.IntegerField(min_value=1, required=False)


class DayFilterForm(forms.Form):
    """The booking page's filters (in the query string: nothing personal)."""

    day = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    area = forms.CharField(required=False, max_length=40)
    product = forms.CharField(required=False, max_length=30)
    venue = forms.IntegerField(required=False, min_value=1)
    # Booking the series together: the first dose's slot, chosen; the page chooses the next.
    first = forms.IntegerField(required=False, min_value=1)

    def first_slot_id(self) -> int | None:
        if not self.is_valid():
            return None
        first = self.cleaned_data.get("first")
        return int(first) if first else None

    def value(self, name: str) -> str | int | date | None:
        if not self.is_valid():
            return None
        return self.cleaned_data.get(name) or None


class WebLoginForm(forms.Form):
    disabled = forms.TypedChoiceField(
        choices=[("1", "1"), ("0", "0")], coerce=lambda value: value == "1"
    )
    # Stopping ends the resident's sessions at once: it is confirmed, resuming is not.
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("disabled") and not cleaned.get("confirm"):
            raise forms.ValidationError(
                _("停止するには、確認のチェックを入れてください。"), code="unconfirmed"
            )
        return cleaned
