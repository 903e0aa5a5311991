from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from audit.chain import Actor
from booking.console.forms import ConsoleForm

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _moment(label: Any, *, required: bool) -> forms.DateTimeField:
    # Read in the current time zone (Asia/Tokyo), stored and compared in UTC.
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )


ACTOR_KINDS = [
    ("", _("すべて")),
    (Actor.STAFF, _("職員")),
    (Actor.RESIDENT, _("住民")),
    (Actor.ANONYMOUS, _("ログイン前")),
    (Actor.SYSTEM, _("システム")),
]


class _Period(ConsoleForm):
    """A form with ``start`` and ``end``: the end after the start, when both are given."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start: datetime | None = cleaned.get("start")
        end: datetime | None = cleaned.get("end")
        if start and end and end <= start:
            raise forms.ValidationError(_("終了日時は開始日時より後にしてください。"))
        return cleaned


class TrailFilterForm(_Period):
    start = _moment(_("開始（日本時間）"), required=False)
    end = _moment(_("終了（日本時間、この時刻は含まない）"), required=False)
    action = forms.CharField(
        label=_("操作"),
        required=False,
        max_length=80,
        help_text=_(
            "操作の名前の一部（例：受付、取消）か、記号の先頭（例：callcentre. 、booking.created）"
        ),
    )
    actor_kind = forms.ChoiceField(label=_("操作した人の種別"), required=False, choices=ACTOR_KINDS)
    actor_id = forms.CharField(
        label=_("操作した人"),
        required=False,
        max_length=254,
        help_text=_("ID、一覧の表記（例：staff:6）、職員のメールアドレス、または住民の接種券番号"),
    )
    target = forms.CharField(
        label=_("対象の住民・予約"),
        required=False,
        max_length=30,
        help_text=_(
            "接種券番号（その方の接種券と予約すべてと、その方が載った検索結果・ファイル）または予約番号"
        ),
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {key: value for key, value in self.cleaned_data.items() if value not in ("", None)}


class TrailReportForm(_Period):
    start = _moment(_("開始（日本時間）"), required=True)
    end = _moment(_("終了（日本時間、この時刻は含まない）"), required=True)
