"""Residents' forms. Rendered by one template each field, so every input has its label, and
its help and error text tied to it (Django sets ``aria-describedby`` and ``aria-invalid``)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from booking.models import NotificationChannel
from booking.models.notifications import Language
from booking.registry.dates import EARLIEST, era_of
from booking.registry.normalize import NormalizeError, normalize_kana, normalize_voucher_number
from booking.selectors.availability import venues_by_area
from booking.services.registry_import import CODE_ALPHABET, CODE_LENGTH

# 和暦: many residents know their birth year by era (昭和23年) rather than as 1948. The
# eras' names as an English page writes them.
_ERA_NAMES = {
    "明治": pgettext_lazy("era", "明治"),
    "大正": pgettext_lazy("era", "大正"),
    "昭和": pgettext_lazy("era", "昭和"),
    "平成": pgettext_lazy("era", "平成"),
    "令和": pgettext_lazy("era", "令和"),
}


def _era_year(day: date) -> str:
    if day < EARLIEST:
        return ""
    era, year, _month, _day = era_of(day)
    number = pgettext("the first year of an era", "元") if year == 1 else str(year)
    return pgettext("an era and its year", "%(era)s%(year)s") % {
        "era": _ERA_NAMES[era.name],
        "year": number,
    }


def japanese_year_label(year: int) -> str:
    """``1948（昭和23）`` (in English ``1948 (Showa 23)``); a year in which the era changed
    names both eras."""
    first = _era_year(date(year, 1, 1))
    last = _era_year(date(year, 12, 31))
    era = first if first == last else first + pgettext("between two eras", "／") + last
    if not era:
        return str(year)
    return f"{year}{pgettext('before an aside', '（')}{era}{pgettext('after an aside', '）')}"


OLDEST_AGE = 120


class BirthDateWidget(forms.SelectDateWidget):
    """Three selects, each labelled by its unit (年 月 日), inside the field's fieldset."""

    template_name = "booking/resident/widgets/birth_date.html"
    _units = {"year": _("年"), "month": _("月"), "day": _("日")}

    def __init__(self) -> None:
        super().__init__(
            months={month: str(month) for month in range(1, 13)},
            empty_label=("―", "―", "―"),
        )

    @staticmethod
    def _parse_date_fmt() -> Any:
        """Year, month, day in every language, as the help text says (Django orders the
        parts by the language's date format: month first in English)."""
        yield from ("year", "month", "day")

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        this_year = timezone.localdate().year
        # As far back as anyone alive (the oldest are over 115): a resident born before
        # the list starts could not log in at all (the registry takes any date from 明治).
        self.years = range(this_year - OLDEST_AGE, this_year + 1)
        # Always an empty first choice, so nobody is born in the first year on the list by
        # forgetting to choose (the field stays required).
        required, self.is_required = self.is_required, False
        try:
            context = super().get_context(name, value, attrs)
        finally:
            self.is_required = required
        subwidgets = context["widget"]["subwidgets"]
        _describe_parts(subwidgets, attrs or {})
        for sub in subwidgets:
            part = sub["name"].rsplit("_", 1)[1]
            sub["unit"] = self._units[part]
            if part == "year":
                sub["optgroups"] = [
                    (
                        group,
                        [
                            {**option, "label": japanese_year_label(int(option["value"]))}
                            if option["value"]
                            else option
                            for option in options
                        ],
                        index,
                    )
                    for group, options, index in sub["optgroups"]
                ]
            # The options differ only by the year's range, the language and which one is
            # selected: written once per process for each (the login page shows them to
            # every resident).
            key = (part, this_year, get_language(), _selected(sub["optgroups"]))
            html = _OPTIONS_WRITTEN.get(key)
            if html is None:
                html = _options_html(sub["optgroups"])
                if len(_OPTIONS_WRITTEN) < _OPTIONS_KEPT:
                    _OPTIONS_WRITTEN[key] = html
            sub["options_html"] = html
        return context

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        """The widget's HTML. Empty (the login page as every resident first sees it), it is
        the same for the same name, attributes, year and language: written once per process
        for each. Building the 150 options' contexts was most of what remained of the page's
        cost (scripts/bench/README.md, "Stop 13")."""
        if value not in (None, "", {}):
            return super().render(name, value, attrs, renderer)
        key = (
            name,
            _attrs_key(attrs),
            _attrs_key(self.attrs),  # the widget's own (autofocus after an error)
            timezone.localdate().year,
            get_language(),
            id(renderer),
        )
        html = _EMPTY_WRITTEN.get(key)
        if html is None:
            html = super().render(name, value, attrs, renderer)
            if len(_EMPTY_WRITTEN) < _OPTIONS_KEPT:
                _EMPTY_WRITTEN[key] = html
        return html


def _describe_parts(subwidgets: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
    """Each select of a date that is wrong is read out with the field's message and help
    (Django ties them to the fieldset, which a screen reader does not read as focus moves
    into a select); after an error, focus goes to the first part left at ―, not to all
    three at once (the year, which is chosen, when only the day was missing)."""
    if attrs.get("aria-invalid") and attrs.get("id"):
        described = f"{attrs['id']}_helptext {attrs['id']}_error"
        for sub in subwidgets:
            sub["attrs"]["aria-describedby"] = described
    focused = [sub for sub in subwidgets if sub["attrs"].pop("autofocus", False)]
    if focused:
        empty = [sub for sub in focused if not any(sub["value"])]
        (empty or focused)[0]["attrs"]["autofocus"] = True


def _attrs_key(attrs: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(name), repr(value)) for name, value in (attrs or {}).items()))


# (name, attributes, this year, language, renderer) -> the empty widget's HTML.
_EMPTY_WRITTEN: dict[tuple[Any, ...], SafeString] = {}

# (part, this year, language, selected value) -> the options' HTML; bounded, though the keys
# are few: three parts, two languages, a value each (a day, a month, 111 years) or none.
_OPTIONS_WRITTEN: dict[tuple[str, int, str | None, str | None], SafeString] = {}
_OPTIONS_KEPT = 2048


def _selected(optgroups: list[tuple[Any, list[dict[str, Any]], int]]) -> str | None:
    for _group, options, _index in optgroups:
        for option in options:
            if option["selected"]:
                return str(option["value"])
    return None


def _attrs_html(attrs: dict[str, Any]) -> str:
    # As django/forms/widgets/attrs.html writes them.
    return "".join(
        f" {conditional_escape(name)}"
        + ("" if value is True else f'="{conditional_escape(str(value))}"')
        for name, value in attrs.items()
        if value is not False
    )


def _options_html(optgroups: list[tuple[Any, list[dict[str, Any]], int]]) -> SafeString:
    """The options of one select exactly as Django's select.html and select_option.html write
    them, built here instead of through a template include per option: the login page, the
    first page of every booking, has some 150 options, and the includes were most of its
    cost. The template (widgets/birth_date.html) writes the select around them."""
    parts = []
    for group, options, _index in optgroups:
        if group:
            parts.append(f'\n  <optgroup label="{conditional_escape(group)}">')
        for option in options:
            value = conditional_escape(str(option["value"]))
            label = conditional_escape(localize(option["label"]))
            parts.append(
                f'\n  <option value="{value}"{_attrs_html(option["attrs"])}>{label}</option>\n'
            )
        if group:
            parts.append("\n  </optgroup>")
    return mark_safe("".join(parts))  # noqa: S308  (every value above is escaped)


class ResidentForm(forms.Form):
    template_name = "booking/resident/form.html"
    # A form whose page says nothing else of its errors: a line above it is announced, and
    # the first wrong field takes the focus (the login pages have their own).
    summarize_errors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # no colon after Japanese labels
        super().__init__(*args, **kwargs)

    def get_context(self) -> dict[str, Any]:
        if self.summarize_errors and self.is_bound and self.errors:
            first = next((name for name in self.fields if name in self.errors), None)
            if first is not None:
                self.fields[first].widget.attrs["autofocus"] = True
        return super().get_context()


def _voucher_number_field() -> forms.CharField:
    return forms.CharField(
        label=_("接種券番号（10桁）"),
        max_length=40,
        help_text=_("接種券に印刷されている10桁の数字です。"),
        error_messages={"required": _("接種券番号を入力してください。")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "size": 14, "spellcheck": "false"}
        ),
    )


# What residents type between the digits as they copy them from the letter, in groups:
# spaces and dashes of either width (and ー, which a Japanese keyboard gives for a dash).
_VOUCHER_GAPS = re.compile("[ \u3000\\-\u2010-\u2015\u2212\u30fc\uff0d]")


def _clean_voucher_number(value: str) -> str:
    try:
        return normalize_voucher_number(_VOUCHER_GAPS.sub("", value.strip()))
    except NormalizeError:
        raise ValidationError(
            _("接種券番号は10桁の数字で入力してください。"), code="voucher_format"
        ) from None


class BirthDateField(forms.DateField):
    """A birth date from the three selects: one left at ― is named (日を選んでください), not
    taken for a day that does not exist."""

    _parts = (("year", _("年")), ("month", _("月")), ("day", _("日")))

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str):
            pieces = value.split("-")
            if len(pieces) == 3 and "0" in pieces and all(p.isdigit() for p in pieces):
                missing = [
                    str(unit)
                    for (_part, unit), p in zip(self._parts, pieces, strict=True)
                    if p == "0"
                ]
                raise ValidationError(
                    _("生年月日の%(parts)sを選んでください。")
                    % {"parts": pgettext("between the parts of a date", "・").join(missing)},
                    code="incomplete",
                )
        return super().to_python(value)


def _birth_date_field() -> forms.DateField:
    return BirthDateField(
        label=_("生年月日"),
        widget=BirthDateWidget(),
        help_text=_("年・月・日を選んでください。年は西暦と和暦で表示しています。"),
        error_messages={
            "invalid": _("生年月日が正しくありません（存在しない日付です）。"),
            "required": _("生年月日を選んでください。"),
        },
    )


def _name_kana_field() -> forms.CharField:
    # Not required by the form: left empty, the login service asks for it (and explains why)
    # without counting an attempt.
    return forms.CharField(
        label=_("お名前（カタカナ）"),
        max_length=100,
        required=False,
        help_text=_(
            "確認のため、接種券のあて名のお名前をカタカナで入力してください。例：セッシュ ハナコ"
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class BirthDateLoginForm(ResidentForm):
    """Voucher number and birth date; under attack, the katakana name as well."""

    voucher_number = _voucher_number_field()
    birth_date = _birth_date_field()

    def __init__(self, *args: Any, extra_step: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra_step = extra_step
        if extra_step:
            self.fields["name_kana"] = _name_kana_field()

    def clean_voucher_number(self) -> str:
        return _clean_voucher_number(self.cleaned_data["voucher_number"])

    def clean_name_kana(self) -> str:
        if not self.cleaned_data["name_kana"]:
            return ""
        try:
            return normalize_kana(self.cleaned_data["name_kana"])
        except NormalizeError:
            raise ValidationError(
                _("お名前はカタカナで入力してください。"), code="kana_format"
            ) from None


class CodeLoginForm(ResidentForm):
    voucher_number = _voucher_number_field()
    code = forms.CharField(
        label=_("認証コード（8文字）"),
        max_length=40,
        help_text=_("接種券と一緒に届いた案内に印刷されている、英字と数字の8文字です。"),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )

    def clean_voucher_number(self) -> str:
        return _clean_voucher_number(self.cleaned_data["voucher_number"])

    def clean_code(self) -> str:
        text = unicodedata.normalize("NFKC", self.cleaned_data["code"]).upper()
        code = "".join(ch for ch in text if ch not in " -ー")
        if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
            raise ValidationError(
                _("認証コードは英字と数字の8文字です（例：AB3D-EF7H）。"), code="code_format"
            )
        return code


def _password_field(label: Any, *, autocomplete: str, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=4096,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class PasswordLoginForm(ResidentForm):
    voucher_number = _voucher_number_field()
    password = _password_field(_("パスワード"), autocomplete="current-password")

    def clean_voucher_number(self) -> str:
        return _clean_voucher_number(self.cleaned_data["voucher_number"])


class AccountLoginForm(ResidentForm):
    # Not an EmailField: a malformed address fails exactly like a wrong password.
    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username"}),
    )
    password = _password_field(_("パスワード"), autocomplete="current-password")


_NEW_PASSWORD_HELP = _(
    "10文字以上。数字だけのもの、よく使われるもの、接種券番号に似たものは使えません。"
)


class PasswordSetForm(ResidentForm):
    password1 = _password_field(
        _("新しいパスワード"), autocomplete="new-password", help_text=_NEW_PASSWORD_HELP
    )
    password2 = _password_field(
        _("新しいパスワード（確認のためもう一度）"), autocomplete="new-password"
    )

    def clean_password2(self) -> str:
        first = self.cleaned_data.get("password1")
        second: str = self.cleaned_data["password2"]
        if first is not None and first != second:
            raise ValidationError(_("2つのパスワードが一致しません。"), code="mismatch")
        return second


class AccountCreateForm(PasswordSetForm):
    email = forms.EmailField(
        label=_("メールアドレス"),
        max_length=254,
        help_text=_("ログインに使います。"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    field_order = ["email", "password1", "password2"]

    def clean_email(self) -> str:
        return unicodedata.normalize("NFKC", self.cleaned_data["email"]).strip()


class ContactForm(ResidentForm):
    """Every field is entered again; the old values are never shown (ARCHITECTURE.md)."""

    summarize_errors = True

    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        required=False,
        help_text=_("空欄にすると、登録済みのメールアドレスを削除します。"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label=_("携帯電話番号（SMS）"),
        max_length=30,
        required=False,
        help_text=_("070・080・090で始まる番号。空欄にすると、登録済みの番号を削除します。"),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    channels = forms.MultipleChoiceField(
        label=_("お知らせの受け取り方"),
        required=False,
        choices=NotificationChannel.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, line_linked: bool, **kwargs: Any) -> None:
        """LINE is a choice once an account is linked (the link is made below the form)."""
        super().__init__(*args, **kwargs)
        if not line_linked:
            channels = self.fields["channels"]
            assert isinstance(channels, forms.MultipleChoiceField)
            channels.choices = [
                (value, label)
                for value, label in NotificationChannel.choices
                if value != NotificationChannel.LINE
            ]


class ContactLanguageForm(ResidentForm):
    """The language of the messages, saved on its own (the addresses are not entered again)."""

    language = forms.ChoiceField(
        label=_("お知らせの言語"), choices=Language.choices, initial=Language.JA
    )


class _MunicipalSelect(forms.Select):
    """A select of the municipality's own names (areas, vaccines, venues): Japanese whatever
    the page's language, so each of them but "all" is marked so (WCAG 3.1.2, as
    ``municipal_text.ja`` marks text)."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        if option["value"] not in ("", None) and not (get_language() or "ja").startswith("ja"):
            option["attrs"]["lang"] = "ja"
        return option


class AvailabilityFilterForm(forms.Form):
    """Area, vaccine and venue filters of the date and slot pages (query string; nothing
    personal). A value that is not offered filters nothing; the others still apply."""

    area = forms.ChoiceField(label=_("地区"), required=False, widget=_MunicipalSelect)
    product = forms.ChoiceField(label=_("ワクチン"), required=False, widget=_MunicipalSelect)
    venue = forms.TypedChoiceField(
        label=_("会場"), required=False, coerce=int, empty_value=None, widget=_MunicipalSelect
    )

    def __init__(
        self,
        *args: Any,
        areas: tuple[str, ...],
        products: tuple[tuple[str, str], ...],
        venues: tuple[tuple[int, str, str], ...] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.areas, self.products, self.venues = areas, products, venues
        area_field = self.fields["area"]
        product_field = self.fields["product"]
        venue_field = self.fields["venue"]
        assert isinstance(area_field, forms.ChoiceField)
        assert isinstance(product_field, forms.ChoiceField)
        assert isinstance(venue_field, forms.ChoiceField)
        area_field.choices = [("", _("すべての地区")), *[(area, area) for area in areas]]
        product_field.choices = [("", _("すべてのワクチン")), *products]
        venue_field.choices = [
            ("", _("すべての会場")),
            *[
                (area, [(str(venue_id), name) for venue_id, name in members])
                for area, members in venues_by_area(venues)
            ],
        ]

    def filters(self) -> tuple[str | None, str | None, int | None]:
        """The area, vaccine and venue chosen, each None when not chosen or not offered."""
        self.is_valid()
        chosen = getattr(self, "cleaned_data", {})
        return chosen.get("area") or None, chosen.get("product") or None, chosen.get("venue")
