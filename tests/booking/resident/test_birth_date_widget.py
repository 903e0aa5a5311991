"""The birth-date selects write their options in Python (BirthDateWidget): the HTML must be
what Django's own select templates write, for a blank form, a chosen date and an error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.forms.renderers import get_default_renderer
from django.utils import timezone, translation
from django.utils.html import escape

from booking.resident.forms import BirthDateLoginForm, BirthDateWidget


def _as_django_writes_it(widget: BirthDateWidget, value: object, attrs: dict[str, object]) -> str:
    renderer = get_default_renderer()
    context = widget.get_context("birth_date", value, attrs)
    parts = []
    for sub in context["widget"]["subwidgets"]:
        # renderer.render() strips; an {% include %} of select.html keeps its last newline.
        select = renderer.render("django/forms/widgets/select.html", {"widget": sub}) + "\n"
        label = f'<label class="unit" for="{sub["attrs"]["id"]}">{escape(sub["unit"])}</label>'
        parts.append(f'<span class="date-part">{select}{label}</span>')
    return f'<span class="date-parts">{"".join(parts)}</span>'  # render() strips, too


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize(
    ("value", "attrs"),
    [
        (None, {"id": "id_birth_date", "required": True}),
        (date(1948, 2, 29), {"id": "id_birth_date", "required": True}),
        (
            {"birth_date_year": "1950", "birth_date_month": "2", "birth_date_day": "31"},
            {"id": "id_birth_date", "aria-invalid": "true", "aria-describedby": "login-error"},
        ),
    ],
)
def test_the_selects_are_what_djangos_templates_write(
    language: str, value: object, attrs: dict[str, object]
) -> None:
    widget = BirthDateWidget()
    with translation.override(language):
        expected = _as_django_writes_it(widget, value, attrs)
        assert widget.render("birth_date", value, attrs) == expected
    assert expected.count("<option") > 150


def test_the_oldest_residents_find_their_birth_year() -> None:
    """The registry takes a birth date of 大正3年 (1914); its resident must be able to choose
    that year to log in."""
    html = BirthDateWidget().render("birth_date", None, {"id": "id_birth_date"})
    assert '<option value="1914">1914（大正3）</option>' in html
    this_year = timezone.localdate().year
    assert f'<option value="{this_year - 120}">' in html
    assert f'<option value="{this_year - 121}">' not in html


def test_the_login_form_keeps_the_chosen_date_selected() -> None:
    form = BirthDateLoginForm(
        data={
            "voucher_number": "0000000001",
            "birth_date_year": "1950",
            "birth_date_month": "2",
            "birth_date_day": "3",
        }
    )
    html = str(form["birth_date"])
    assert '<option value="1950" selected>1950（昭和25）</option>' in html
    assert '<option value="2" selected>2</option>' in html
    assert '<option value="3" selected>3</option>' in html


def test_options_written_once_are_never_served_for_another_language_or_choice() -> None:
    """The options' HTML is kept per process: one language's or one chosen date's never
    stands in for another's."""
    widget = BirthDateWidget()
    attrs = {"id": "id_birth_date", "required": True}
    cases = [("ja", None), ("en", None), ("ja", date(1950, 2, 3)), ("ja", date(1950, 2, 4))]
    for _round in range(2):  # the second round is served from what the first one kept
        for language, value in cases:
            with translation.override(language):
                assert widget.render("birth_date", value, attrs) == _as_django_writes_it(
                    widget, value, attrs
                )


def test_the_empty_widget_kept_once_follows_its_attributes_and_the_new_year() -> None:
    """The empty widget's whole HTML is kept per process (the login page's): another id or
    error state, or a new year (one more year to choose), is never served the old one."""
    widget = BirthDateWidget()
    plain = {"id": "id_birth_date", "required": True}
    invalid = {"id": "id_birth_date", "aria-invalid": "true", "aria-describedby": "login-error"}
    with time_machine.travel(datetime(2026, 12, 31, 12, tzinfo=UTC), tick=False):
        for attrs in (plain, invalid, plain, invalid):
            html = widget.render("birth_date", None, attrs)
            assert html == _as_django_writes_it(widget, None, attrs)
        assert '<option value="2027"' not in html
    with time_machine.travel(datetime(2027, 1, 1, 12, tzinfo=UTC), tick=False):
        html = widget.render("birth_date", None, plain)
        assert html == _as_django_writes_it(widget, None, plain)
        assert '<option value="2027">2027（令和9）</option>' in html


@pytest.mark.parametrize(
    ("year", "month", "day", "message"),
    [
        ("1950", "2", "", "生年月日の日を選んでください。"),
        ("", "2", "3", "生年月日の年を選んでください。"),
        ("1950", "", "", "生年月日の月・日を選んでください。"),
        ("", "", "", "生年月日を選んでください。"),
        ("1950", "2", "30", "生年月日が正しくありません（存在しない日付です）。"),
    ],
)
def test_a_part_left_unchosen_is_named_not_taken_for_a_day_that_does_not_exist(
    year: str, month: str, day: str, message: str
) -> None:
    form = BirthDateLoginForm(
        data={
            "voucher_number": "0000000001",
            "birth_date_year": year,
            "birth_date_month": month,
            "birth_date_day": day,
        }
    )
    assert not form.is_valid()
    assert form.errors["birth_date"] == [message]
