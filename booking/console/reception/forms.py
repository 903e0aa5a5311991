from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.models import Slot, StaffMember, VaccineProduct, Venue
from booking.services.reception import (
    ProductChangeReason,
    ReceptionRefused,
    doctor_problem,
    lot_number_normalize,
    lot_number_problem,
)
from sesshu.trail_text import refuse_identifiers


class LookupForm(ConsoleForm):
    """One box for the typed 予約番号 and for a scan: a hardware QR scanner types the code's
    text followed by Enter, which submits the form; a phone's camera app's text can be
    pasted in."""

    number = forms.CharField(
        label=_("予約番号・接種券番号（またはQRコードの読み取り）"),
        max_length=500,
        help_text=_(
            "予約確認のQRコードをスキャナーで読み取るか、予約番号（英数字10文字）を入力して"
            "Enterキーを押してください。ハイフンや小文字も使えます。予約確認をお持ちでない方は、"
            "接種券の接種券番号（数字10桁）で本日の予約を探せます。"
        ),
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "enterkeyhint": "search",
                "size": 16,
            }
        ),
    )


class WalkInForm(ConsoleForm):
    """A resident without a booking: their voucher number (from the 接種券 in hand), a slot
    of today with a place left, and the identity seen."""

    voucher_number = forms.CharField(
        label=_("接種券番号（数字10桁）"),
        max_length=20,
        help_text=_("お持ちの接種券に印字された接種券番号です。"),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "autofocus": True, "size": 12}
        ),
    )
    slot = forms.TypedChoiceField(
        label=_("空きのある本日の枠"), coerce=int, widget=forms.RadioSelect
    )
    # Asked on the second step, once the voucher's holder is shown (the view requires it).
    confirm = forms.BooleanField(
        label=_("接種券と本人確認書類で、上の方ご本人であることを確かめました"), required=False
    )

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["slot"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = choices

    def clean_voucher_number(self) -> str:
        typed = unicodedata.normalize("NFKC", self.cleaned_data["voucher_number"])
        digits = "".join(typed.split()).replace("-", "")
        if not (len(digits) == 10 and digits.isascii() and digits.isdigit()):
            raise forms.ValidationError(
                _("接種券番号は数字10桁で入力してください（接種券に印字されています）。")
            )
        return digits


class VaccinationForm(ConsoleForm):
    """After the shot: the vaccine (the slot's unless the doctor says otherwise, with a
    reason), its lot number, and the doctor. Dose, date and venue come from the booking."""

    product = forms.ModelChoiceField(
        label=_("ワクチン"),
        queryset=VaccineProduct.objects.none(),
        empty_label=None,
        help_text=_("予約枠のワクチンが選ばれています。変える場合は医師が理由を選びます。"),
    )
    product_reason = forms.ChoiceField(
        label=_("予約枠と異なるワクチンにした理由"),
        choices=[("", _("（変えない場合は選ばない）")), *ProductChangeReason.choices],
        required=False,
    )
    lot_number = forms.CharField(
        label=_("ロット番号"),
        max_length=30,
        help_text=_("バイアルまたはシールに記載の番号"),
        error_messages={"required": _("ロット番号を入力してください。")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    doctor = forms.CharField(
        label=_("接種した医師の氏名"),
        max_length=60,
        error_messages={"required": _("医師の氏名を入力してください。")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def get_context(self) -> dict[str, Any]:
        # Refused for what was typed: the first wrong box takes the focus (as ResidentForm's).
        if self.is_bound and self.errors:
            first = next((name for name in self.fields if name in self.errors), None)
            if first is not None:
                self.fields[first].widget.attrs["autofocus"] = True
        return super().get_context()

    def __init__(self, *args: Any, slot: Slot, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("product", slot.product_id)
        super().__init__(*args, **kwargs)
        self.slot = slot
        # Every vaccine the municipality has, inactive ones too: the doctor records what was
        # actually given.
        products: QuerySet[VaccineProduct] = VaccineProduct.objects.order_by("-active", "name")
        self.fields["product"].queryset = products  # type: ignore[attr-defined]

    def clean_lot_number(self) -> str:
        return _lot_number(self.cleaned_data["lot_number"])

    def clean_doctor(self) -> str:
        return _doctor(self.cleaned_data["doctor"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        product = cleaned.get("product")
        reason = cleaned.get("product_reason") or ""
        if product is not None:
            if product.pk != self.slot.product_id and not reason:
                self.add_error(
                    "product_reason",
                    _("予約枠と異なるワクチンを記録するには、医師が理由を選んでください。"),
                )
            if product.pk == self.slot.product_id:
                cleaned["product_reason"] = ""
        return cleaned


class NoShowForm(ConsoleForm):
    """The list staff saw: the venue and the booking ids listed on the page."""

    venue = forms.ModelChoiceField(label=_("会場"), queryset=Venue.objects.none())

    def __init__(self, *args: Any, venues: QuerySet[Venue], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["venue"].queryset = venues  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        ids: list[int] = []
        for value in self.data.getlist("booking") if hasattr(self.data, "getlist") else []:
            if not str(value).isdigit():
                raise forms.ValidationError(_("一覧が正しく送信されませんでした。"))
            ids.append(int(value))
        cleaned["booking_ids"] = ids
        return cleaned


class StaffVenuesForm(ConsoleForm):
    venues = forms.ModelMultipleChoiceField(
        label=_("担当会場"),
        queryset=Venue.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    # The venues as the form showed them: another admin's change in between is refused.
    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, member: StaffMember, **kwargs: Any) -> None:
        shown = list(member.venues.all())
        kwargs.setdefault(
            "initial",
            {"venues": shown, "seen": ",".join(str(v.pk) for v in sorted(shown, key=_pk))},
        )
        kwargs.setdefault("prefix", f"staff-{member.pk}")
        super().__init__(*args, **kwargs)
        self.member = member
        self.fields["venues"].queryset = Venue.objects.order_by(  # type: ignore[attr-defined]
            "area", "name"
        )

    def seen_ids(self) -> set[int] | None:
        """The venues' ids the form showed (None for a form sent without them)."""
        text = self.cleaned_data.get("seen")
        if text is None:
            return None
        parts = [part for part in str(text).split(",") if part]
        if not all(part.isdigit() for part in parts):
            return None
        return {int(part) for part in parts}


def _pk(venue: Venue) -> int:
    return int(venue.pk)


def _lot_number(typed: str) -> str:
    """The lot number as the record keeps it, or the refusal tied to its box."""
    lot = lot_number_normalize(typed)
    problem = lot_number_problem(lot)
    if problem:
        raise forms.ValidationError(ReceptionRefused(problem).message)
    return lot


def _doctor(typed: str) -> str:
    doctor = " ".join(typed.split())
    problem = doctor_problem(doctor)
    if problem:
        raise forms.ValidationError(ReceptionRefused(problem).message)
    return doctor


class VaccinationCorrectionForm(ConsoleForm):
    """A recorded dose's lot number and doctor, corrected with the reason; with the record's
    values as the form showed them (hidden), so that a correction made meanwhile by someone
    else is refused, never undone."""

    lot_number = forms.CharField(
        label=_("ロット番号"),
        max_length=30,
        error_messages={"required": _("ロット番号を入力してください。")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    doctor = forms.CharField(
        label=_("接種した医師の氏名"),
        max_length=60,
        error_messages={"required": _("医師の氏名を入力してください。")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    reason = forms.CharField(
        label=_("訂正の理由"),
        max_length=200,
        help_text=_("例：ロット番号の入力誤り（バイアルの表示を確認）。監査記録に残ります。"),
        error_messages={"required": _("訂正の理由を入力してください。")},
        validators=[refuse_identifiers],
    )
    seen_lot_number = forms.CharField(widget=forms.HiddenInput, required=False)
    seen_doctor = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)

    def clean_lot_number(self) -> str:
        return _lot_number(self.cleaned_data["lot_number"])

    def clean_doctor(self) -> str:
        return _doctor(self.cleaned_data["doctor"])

    def seen(self) -> tuple[str, str] | None:
        """(lot number, doctor) as shown; None for a form that did not carry them."""
        if "seen_lot_number" not in self.data:
            return None
        return self.cleaned_data["seen_lot_number"], self.cleaned_data["seen_doctor"]


class VaccinationVoidForm(ConsoleForm):
    """A dose recorded by mistake, withdrawn by an admin with the reason."""

    reason = forms.CharField(
        label=_("取り消す理由"),
        max_length=200,
        help_text=_("例：別の方の予約に記録した／ワクチンの選択を誤った。監査記録に残ります。"),
        error_messages={"required": _("取り消す理由を入力してください。")},
        validators=[refuse_identifiers],
    )
    confirm = forms.BooleanField(
        label=_("この接種記録を取り消します（予約は「受付済み」に戻ります）"),
        error_messages={"required": _("確認のチェックを入れてください。")},
    )
