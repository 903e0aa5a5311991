from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.services.callcentre import NOTE_MAX_LENGTH, RevealReason


class SearchForm(ConsoleForm):
    q = forms.CharField(
        label=_("接種券番号・氏名（カナ）・電話番号"),
        max_length=100,
        error_messages={
            "required": _("接種券番号、氏名（カナ）、電話番号のいずれかを入力してください。")
        },
        help_text=_(
            "どれか1つで検索できます。氏名はカタカナかひらがなで（空白は無視）。"
            "氏名と電話番号を空白で区切って両方入れると、両方に一致する人だけを表示します。"
        ),
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "off", "spellcheck": "false", "size": 30}
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


class IdentityForm(ConsoleForm):
    # The first box has the focus: the resident starts reading back at once.
    name_matches = forms.BooleanField(
        label=_("氏名が登録内容と一致した"),
        required=False,
        widget=forms.CheckboxInput(attrs={"autofocus": True}),
    )
    birth_date_matches = forms.BooleanField(label=_("生年月日が登録内容と一致した"), required=False)
    address_matches = forms.BooleanField(label=_("住所が登録内容と一致した"), required=False)


class SlotChoiceForm(forms.Form):
    slot = forms.IntegerField(min_value=1)
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
