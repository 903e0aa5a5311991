"""Planning forms: Japanese labels, rendered by the console's one form template."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.validators import URLValidator
from django.db.models import Min
from django.db.models.functions import TruncTime
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.console.planning.common import JAPAN, WEEKDAYS, today
from booking.models import AgePhase, BookingPolicy, Channel, Slot, VaccineProduct, Venue
from booking.services.planning import (
    MAX_PLAN_DAYS,
    PhaseDetails,
    PolicyDetails,
    SlotPattern,
    VaccineDetails,
    VenueDetails,
    rules_version,
    venue_version,
)
from booking.spreadsheet import refuse_formula_start

MAX_SLOT_CAPACITY = 10_000
MAX_REPORT_DAYS = 93
MAX_FREE_SLOT_DAYS = 62
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


class PlanningForm(ConsoleForm):
    """The console's form, with a fieldset and legend around groups of boxes (曜日, 期間の基準)
    so a screen reader names the group, not only each box."""

    template_name = "booking/console/planning/_form.html"


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time", "step": 60}, format="%H:%M")


def _capacity_field(label: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=MAX_SLOT_CAPACITY,
        initial=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={
            "required": _("定員を入力してください（受け付けない場合は 0）。"),
            "invalid": _("定員は数字で入力してください。"),
            "min_value": _("定員は 0 以上にしてください。"),
            "max_value": _("定員は 1 枠 %(limit_value)s 人までです。"),
        },
    )


def _venue_name_key(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold()


_HALF_WIDTH_KANA = re.compile("[\uff61-\uff9f]+")


def _full_width_kana(text: str) -> str:
    """Half-width katakana (ﾃﾞﾓ市, typed or pasted from an old system) as residents read it
    everywhere else (デモ市); the rest as typed (full-width letters and brackets are a
    municipality's own style)."""
    return _HALF_WIDTH_KANA.sub(lambda run: unicodedata.normalize("NFKC", run.group()), text)


class _MapUrlField(forms.URLField):
    """An https address only (one message, not Django's and ours both)."""

    default_validators = [URLValidator(schemes=["https"])]


class VenueForm(PlanningForm):
    name = forms.CharField(label=_("会場名"), max_length=100, validators=[refuse_formula_start])
    area = forms.CharField(
        label=_("地区"),
        max_length=40,
        help_text=_("住民が会場を絞り込むときの地区名です（例：中央地区）。"),
    )
    address = forms.CharField(label=_("住所"), max_length=200, validators=[refuse_formula_start])
    access_notes = forms.CharField(
        label=_("交通案内"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("最寄り駅・バス停、駐車場の有無など。"),
    )
    accessibility = forms.CharField(
        label=_("バリアフリー情報"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("車いすでの来場、エレベーター、多目的トイレなど。"),
    )
    map_url = _MapUrlField(
        label=_("地図のURL"),
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text=_("https:// で始まる地図ページのアドレス。"),
        error_messages={"invalid": _("https:// で始まる地図ページのアドレスを入力してください。")},
    )
    products = forms.ModelMultipleChoiceField(
        label=_("扱うワクチン"),
        queryset=VaccineProduct.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("選ばない場合は、どのワクチンの枠も作成できます。"),
    )
    # The venue as the form showed it (venue_version): another admin's change in between is
    # refused. Empty for a new venue.
    version = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    def __init__(self, *args: Any, venue: Venue | None = None, **kwargs: Any) -> None:
        """``venue``: the venue edited (None: a new one)."""
        super().__init__(*args, **kwargs)
        self.venue = venue
        field = self.fields["products"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = VaccineProduct.objects.filter(active=True).order_by("name")

    def clean_name(self) -> str:
        """No two venues by one name: every list (slots, reception, residents' pages) tells
        venues apart by it, and the slot file names its venue by it. Compared as a resident
        reads it (full-width and spaces aside)."""
        name = _full_width_kana(" ".join(str(self.cleaned_data["name"]).split()))
        key = _venue_name_key(name)
        if self.venue is not None and _venue_name_key(self.venue.name) == key:
            return name  # kept as it is (two venues named alike before this check stay editable)
        others = Venue.objects.all()
        if self.venue is not None:
            others = others.exclude(pk=self.venue.pk)
        for other in others.values_list("name", flat=True):
            if _venue_name_key(other) == key:
                # The venue as the lists show it, which may be written differently.
                raise forms.ValidationError(
                    _("「%(name)s」という会場は既にあります。別の名前にしてください。")
                    % {"name": other}
                )
        return name

    @classmethod
    def initial_for(cls, venue: Venue) -> dict[str, Any]:
        return {
            "name": venue.name,
            "area": venue.area,
            "address": venue.address,
            "access_notes": venue.access_notes,
            "accessibility": venue.accessibility,
            "map_url": venue.map_url,
            "products": list(venue.products.all()),
            "version": venue_version(venue),
        }

    def details(self) -> VenueDetails:
        data = self.cleaned_data
        return VenueDetails(
            name=data["name"].strip(),
            area=_full_width_kana(data["area"].strip()),
            address=_full_width_kana(data["address"].strip()),
            access_notes=_full_width_kana(data["access_notes"].strip()),
            accessibility=_full_width_kana(data["accessibility"].strip()),
            map_url=data["map_url"],
            products=tuple(data["products"]),
        )


class SlotGeneratorForm(PlanningForm):
    venue = forms.ModelChoiceField(
        label=_("会場"), queryset=Venue.objects.none(), empty_label=_("選択してください")
    )
    product = forms.ModelChoiceField(
        label=_("ワクチン"),
        queryset=VaccineProduct.objects.none(),
        empty_label=_("選択してください"),
    )
    first_day = forms.DateField(label=_("開始日"), widget=_date_input())
    last_day = forms.DateField(label=_("終了日"), widget=_date_input())
    weekdays = forms.TypedMultipleChoiceField(
        label=_("曜日"),
        choices=[(str(index), name) for index, name in enumerate(WEEKDAYS)],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        initial=["0", "1", "2", "3", "4"],
    )
    opens = forms.TimeField(label=_("受付開始時刻"), widget=_time_input(), initial="09:00")
    closes = forms.TimeField(label=_("受付終了時刻"), widget=_time_input(), initial="17:00")
    break_from = forms.TimeField(
        label=_("休憩の開始（任意）"),
        widget=_time_input(),
        required=False,
        help_text=_("休憩時間には枠を作りません。"),
    )
    break_to = forms.TimeField(label=_("休憩の終了（任意）"), widget=_time_input(), required=False)
    slot_minutes = forms.IntegerField(
        label=_("1枠の長さ（分）"), min_value=5, max_value=240, initial=30
    )
    capacity_web = _capacity_field(_("1枠の定員：ウェブ"))
    capacity_line = _capacity_field(_("1枠の定員：LINE"))
    capacity_call_centre = _capacity_field(_("1枠の定員：コールセンター"))
    skip_holidays = forms.BooleanField(
        label=_("祝日と年末年始（12月29日〜1月3日）には作成しない"),
        required=False,
        initial=True,
    )
    # Set by the preview; "generate" writes only the plan the preview showed.
    plan = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        venue = self.fields["venue"]
        product = self.fields["product"]
        assert isinstance(venue, forms.ModelChoiceField)
        assert isinstance(product, forms.ModelChoiceField)
        venue.queryset = Venue.objects.filter(is_open=True).order_by("area", "name")
        product.queryset = VaccineProduct.objects.filter(active=True).order_by("name")
        start = today() + timedelta(days=7)
        self.fields["first_day"].initial = start
        self.fields["last_day"].initial = start + timedelta(days=6)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last:
            if last < first:
                self.add_error("last_day", _("終了日は開始日以降にしてください。"))
            elif (last - first).days + 1 > MAX_PLAN_DAYS:
                self.add_error(
                    "last_day",
                    _("一度に作成できるのは%(days)s日分までです。") % {"days": MAX_PLAN_DAYS},
                )
            if first < today():
                self.add_error("first_day", _("過去の日付には枠を作成できません。"))
        opens, closes = cleaned.get("opens"), cleaned.get("closes")
        if opens and closes and closes <= opens:
            self.add_error("closes", _("受付終了時刻は開始時刻より後にしてください。"))
        break_from, break_to = cleaned.get("break_from"), cleaned.get("break_to")
        if bool(break_from) != bool(break_to):
            self.add_error("break_to", _("休憩は開始と終了の両方を入力してください。"))
        elif break_from and break_to and break_to <= break_from:
            self.add_error("break_to", _("休憩の終了は開始より後にしてください。"))
        elif break_from and opens and closes and not (opens < break_from and break_to < closes):
            # A break outside the hours takes nothing away: most likely a mistyped time.
            self.add_error(
                "break_from",
                _("休憩は受付時間（%(opens)s〜%(closes)s）の間に入れてください。")
                % {"opens": opens.strftime("%H:%M"), "closes": closes.strftime("%H:%M")},
            )
        slot_minutes = cleaned.get("slot_minutes")
        if opens and closes and slot_minutes and closes > opens:
            hours = (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)
            if slot_minutes > hours:
                self.add_error(
                    "slot_minutes",
                    _(
                        "1枠の長さ（%(slot)s分）が受付時間（%(hours)s分）より長いため、枠ができません。"
                    )
                    % {"slot": slot_minutes, "hours": hours},
                )
        capacities = [cleaned.get(name) for name in _CAPACITY_FIELDS]
        if all(value is not None for value in capacities) and sum(capacities) <= 0:  # type: ignore[arg-type]
            self.add_error(
                "capacity_web", _("いずれかの受付方法に1人以上の定員を設定してください。")
            )
        venue, product = cleaned.get("venue"), cleaned.get("product")
        if venue and product:
            offered = set(venue.products.values_list("pk", flat=True))
            if offered and product.pk not in offered:
                self.add_error("product", _("この会場では扱っていないワクチンです。"))
        return cleaned

    def pattern(self) -> SlotPattern:
        data = self.cleaned_data
        return SlotPattern(
            venue=data["venue"],
            product=data["product"],
            first_day=data["first_day"],
            last_day=data["last_day"],
            weekdays=frozenset(data["weekdays"]),
            opens=data["opens"],
            closes=data["closes"],
            slot_minutes=data["slot_minutes"],
            capacity_web=data["capacity_web"],
            capacity_line=data["capacity_line"],
            capacity_call_centre=data["capacity_call_centre"],
            break_from=data.get("break_from"),
            break_to=data.get("break_to"),
            skip_holidays=bool(data.get("skip_holidays")),
        )


_CAPACITY_FIELDS = ("capacity_web", "capacity_line", "capacity_call_centre")


class SlotUploadForm(PlanningForm):
    file = forms.FileField(
        label=_("予約枠のCSVファイル"),
        help_text=_(
            "UTF-8 または Shift_JIS（CP932）。1行目は見出し："
            "会場、日付、開始時刻、終了時刻、ワクチンコード、ウェブ枠、LINE枠、コールセンター枠。"
        ),
    )
    check_only = forms.BooleanField(
        label=_("確認だけする（登録しない）"),
        required=False,
        initial=True,  # first a look at what would be made, as the slot generator does
        help_text=_(
            "誤りがないかと、作成される枠の数だけを表示します。"
            "確認できたら、チェックを外して同じファイルをもう一度送信すると登録します。"
        ),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("ファイルが大きすぎます（2MBまで）。何回かに分けてください。")
            )
        return upload


class SlotFilterForm(PlanningForm):
    venue = forms.ModelChoiceField(
        label=_("会場"),
        queryset=Venue.objects.none(),
        required=False,
        empty_label=_("すべての会場"),
    )
    first_day = forms.DateField(label=_("開始日"), widget=_date_input(), required=False)
    last_day = forms.DateField(label=_("終了日"), widget=_date_input(), required=False)
    status = forms.ChoiceField(
        label=_("状態"), choices=[("", _("すべて")), *Slot.Status.choices], required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        venue = self.fields["venue"]
        assert isinstance(venue, forms.ModelChoiceField)
        venue.queryset = Venue.objects.order_by("area", "name")


class SlotCapacityForm(PlanningForm):
    """A slot's places for each channel, with the places the admin saw when the form opened
    (hidden): another admin's change in between is then refused, never overwritten."""

    capacity_web = _capacity_field(_("ウェブ"))
    capacity_line = _capacity_field(_("LINE"))
    capacity_call_centre = _capacity_field(_("コールセンター"))
    # Not required: a form opened before they existed is still taken (unchecked).
    seen_web = forms.IntegerField(min_value=0, widget=forms.HiddenInput, required=False)
    seen_line = forms.IntegerField(min_value=0, widget=forms.HiddenInput, required=False)
    seen_call_centre = forms.IntegerField(min_value=0, widget=forms.HiddenInput, required=False)

    def capacities(self) -> dict[str, int]:
        return {
            name.removeprefix("capacity_"): self.cleaned_data[name] for name in _CAPACITY_FIELDS
        }

    def seen(self) -> dict[str, int] | None:
        """The places as the form showed them; None when the form did not carry them."""
        seen = {
            name.removeprefix("capacity_"): self.cleaned_data.get(
                name.replace("capacity_", "seen_")
            )
            for name in _CAPACITY_FIELDS
        }
        if any(value is None for value in seen.values()):
            return None
        return {channel: int(value) for channel, value in seen.items() if value is not None}


class SlotCancelForm(PlanningForm):
    notice = forms.CharField(
        label=_("住民へのお知らせ（任意）"),
        max_length=200,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "中止の理由など、予約者全員に送られる文です。個人の氏名などは書かないでください。"
        ),
    )
    confirm = forms.BooleanField(
        label=_("この枠を中止し、上の予約をすべて取り消します"), required=True
    )


class DayCancelForm(PlanningForm):
    notice = SlotCancelForm.base_fields["notice"]
    confirm = forms.BooleanField(
        label=_("上の予約枠をすべて中止し、予約をすべて取り消します"), required=True
    )


class DateRangeForm(PlanningForm):
    """A date range given in the query string; the defaults make a blank form valid."""

    max_days = MAX_REPORT_DAYS
    first_day = forms.DateField(label=_("開始日"), widget=_date_input(), required=False)
    last_day = forms.DateField(label=_("終了日"), widget=_date_input(), required=False)

    def default_range(self) -> tuple[date, date]:
        return today() - timedelta(days=13), today() + timedelta(days=14)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        default_first, default_last = self.default_range()
        first = cleaned.get("first_day") or default_first
        last = cleaned.get("last_day") or max(first, default_last)
        if last < first:
            self.add_error("last_day", _("終了日は開始日以降にしてください。"))
        elif (last - first).days + 1 > self.max_days:
            self.add_error(
                "last_day", _("表示できるのは%(days)s日分までです。") % {"days": self.max_days}
            )
        cleaned["first_day"], cleaned["last_day"] = first, last
        return cleaned

    def range(self) -> tuple[date, date]:
        if self.is_valid():
            return self.cleaned_data["first_day"], self.cleaned_data["last_day"]
        return self.default_range()


class FreeSlotFilterForm(DateRangeForm):
    max_days = MAX_FREE_SLOT_DAYS
    area = forms.ChoiceField(label=_("地区"), required=False)
    product = forms.ChoiceField(label=_("ワクチン"), required=False)
    venue = forms.TypedChoiceField(label=_("会場"), required=False, coerce=int, empty_value=None)
    channel = forms.ChoiceField(
        label=_("空きのある受付方法"),
        choices=[("", _("いずれか")), *Channel.choices],
        required=False,
    )

    def __init__(self, *args: Any, venues: Any, channels: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["venue"].choices = [  # type: ignore[attr-defined]
            ("", _("すべての会場")),
            *((str(v.pk), f"{v.area}　{v.name}") for v in venues),
        ]
        self.fields["area"].choices = [  # type: ignore[attr-defined]
            ("", _("すべての地区")),
            *((area, area) for area in sorted({v.area for v in venues})),
        ]
        self.fields["product"].choices = [  # type: ignore[attr-defined]
            ("", _("すべてのワクチン")),
            *VaccineProduct.objects.filter(active=True)
            .order_by("name")
            .values_list("code", "name"),
        ]
        if len(channels) == 1:
            del self.fields["channel"]

    def default_range(self) -> tuple[date, date]:
        return today(), today() + timedelta(days=13)


class VrsExportForm(PlanningForm):
    BASIS_CHOICES = [
        ("recorded_at", _("登録日（記録を入力した日）")),
        ("vaccinated_on", _("接種日")),
    ]
    ENCODING_CHOICES = [
        ("utf-8", _("UTF-8")),
        ("utf-8-sig", _("UTF-8（BOM付き・Excelで開く場合）")),
        ("cp932", _("Shift_JIS（CP932）")),
    ]
    first_day = forms.DateField(label=_("開始日"), widget=_date_input())
    last_day = forms.DateField(label=_("終了日"), widget=_date_input())
    basis = forms.ChoiceField(
        label=_("期間の基準"),
        choices=BASIS_CHOICES,
        initial="recorded_at",  # what the help recommends for the daily export
        widget=forms.RadioSelect,
        help_text=_(
            "毎日の登録には「登録日」が確実です（後から入力された過去の接種も漏れません）。"
        ),
    )
    encoding = forms.ChoiceField(label=_("文字コード"), choices=ENCODING_CHOICES, initial="utf-8")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["first_day"].initial = today() - timedelta(days=1)
        self.fields["last_day"].initial = today() - timedelta(days=1)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last and last < first:
            self.add_error("last_day", _("終了日は開始日以降にしてください。"))
        if first and last and (last - first).days > 400:
            self.add_error("last_day", _("一度に出力できるのは400日分までです。"))
        return cleaned


# --- The booking rules ---------------------------------------------------------------------

MAX_OPENS_DAYS_AHEAD = 366
MAX_CLOSES_HOURS_BEFORE = 24 * 14
_PHONE = re.compile(r"[0-9]{2,5}-?[0-9]{1,4}-?[0-9]{3,4}")


def _number(label: Any, low: int, high: int, *, help_text: Any = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=help_text,
    )


# Full-width punctuation that NFKC would make ASCII and that reads as written in Japanese.
_HOURS_KEPT = frozenset("（）［］｛｝「」『』【】、。・〜～！？")


class _SeenVersion(forms.Form):
    """The row as the form showed it (``rules_version``): a save over another admin's change
    made in between is refused. Not one of the row's own fields (``details``)."""

    version = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    @classmethod
    def _row_fields(cls) -> list[str]:
        return [name for name in cls.base_fields if name != "version"]


def _earliest_slot_time() -> time | None:
    """The earliest time of day (in Japan) a slot to come starts at; None with none."""
    first: time | None = (
        Slot.objects.filter(starts_at__gt=timezone.now())
        .exclude(status=Slot.Status.CANCELLED)
        .aggregate(first=Min(TruncTime("starts_at", tzinfo=JAPAN)))["first"]
    )
    return first


class BookingPolicyForm(_SeenVersion, PlanningForm):
    opens_days_ahead = _number(
        _("何日先まで予約できるか"),
        1,
        MAX_OPENS_DAYS_AHEAD,
        help_text=_("今日から数えて何日先の枠まで住民に表示し、予約を受け付けるか。"),
    )
    opens_at_time = forms.TimeField(
        label=_("新しい日の予約の受付開始時刻（任意）"),
        widget=_time_input(),
        required=False,
        help_text=_(
            "決めると、その日の枠はまとめて、接種日の「何日先まで予約できるか」の日数前の、この"
            "時刻から受け付けます（例：9:00）。住民には「毎日9:00に受付開始」と表示します。空欄の"
            "ときは、枠ごとに、開始時刻のちょうどその日数前から受け付けます（1日の枠が時刻の順に"
            "少しずつ受付開始になります）。時刻を遅くしたり空欄にしたりすると、すでに受付を始めた"
            "日の枠が、新しい時刻まで表示されなくなることがあります（予約済みの予約はそのままです）。"
        ),
    )
    closes_hours_before = _number(
        _("予約・変更の締切（開始の何時間前）"),
        0,
        MAX_CLOSES_HOURS_BEFORE,
        help_text=_(
            "この時間を過ぎた枠は、住民もコールセンターも予約・変更ができません（取消は、コールセンターではできますが、住民はできません）。"
        ),
    )
    book_series_together = forms.BooleanField(
        label=_("1回目と2回目をまとめて予約する"), required=False
    )
    cancel_cascades = forms.BooleanField(
        label=_("1回目を取り消すと2回目も取り消す"), required=False
    )
    call_centre_phone = forms.CharField(
        label=_("コールセンター電話番号"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        help_text=_("住民向けの画面とお知らせに表示します（例：042-000-0000）。"),
    )

    call_centre_hours = forms.CharField(
        label=_("コールセンターの受付時間"),
        max_length=60,
        required=False,
        help_text=_(
            "電話番号と一緒に住民向けの画面に表示します（例：毎日 9:00〜17:00（土日祝も受付））。"
        ),
    )

    def clean_call_centre_hours(self) -> str:
        """Full-width digits, letters and colons as residents' pages write them (９：００ is
        9:00); Japanese brackets and punctuation as the municipality wrote them; spaces
        folded."""
        text = self.cleaned_data["call_centre_hours"]
        folded = "".join(
            character if character in _HOURS_KEPT else unicodedata.normalize("NFKC", character)
            for character in text
        )
        return " ".join(folded.split())

    def clean_call_centre_phone(self) -> str:
        phone = unicodedata.normalize("NFKC", self.cleaned_data["call_centre_phone"]).strip()
        phone = phone.replace("ー", "-").replace("−", "-")
        if phone and not _PHONE.fullmatch(phone):
            raise forms.ValidationError(
                _("電話番号は数字とハイフンで入力してください（例：042-000-0000）。")
            )
        return phone

    def clean_opens_at_time(self) -> time | None:
        value: time | None = self.cleaned_data["opens_at_time"]
        return value.replace(second=0, microsecond=0) if value is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        days, hours = data.get("opens_days_ahead"), data.get("closes_hours_before")
        opening = data.get("opens_at_time")
        first = _earliest_slot_time() if opening is not None else None
        if days is not None and hours is not None and opening is not None and first is not None:
            # The day's earliest slot is bookable from the opening time N days before its day
            # until M hours before it starts: no time between, no booking of it.
            opens = opening.hour * 60 + opening.minute
            starts = days * 24 * 60 + first.hour * 60 + first.minute
            if starts - hours * 60 <= opens:
                self.add_error(
                    "opens_at_time",
                    _(
                        "受付開始時刻（%(time)s）と締切（開始の%(hours)s時間前）では、%(first)sに"
                        "始まる枠（いまある枠でいちばん早い時刻）を予約できる時間がありません。"
                        "受付開始時刻を早めるか、締切を短くするか、予約できる日数を増やしてください。"
                    )
                    % {
                        "time": f"{opening.hour}:{opening.minute:02d}",
                        "hours": hours,
                        "first": f"{first.hour}:{first.minute:02d}",
                    },
                )
        # A slot is bookable from N days before it starts until M hours before: with M
        # hours as long as N days or longer, no slot could ever be booked.
        if days is not None and hours is not None and hours >= days * 24:
            self.add_error(
                "closes_hours_before",
                _(
                    "締切（開始の%(hours)s時間前）が、予約を受け付け始める%(days)s日前"
                    "（%(limit)s時間前）と同じか、それより前です。これではどの枠も予約できません。"
                    "締切を%(limit)s時間前より短くするか、予約できる日数を増やしてください。"
                )
                % {"hours": hours, "days": days, "limit": days * 24},
            )
        return data

    @classmethod
    def initial_for(cls, policy: BookingPolicy) -> dict[str, Any]:
        return {name: getattr(policy, name) for name in cls._row_fields()} | {
            "version": rules_version(policy, PolicyDetails)
        }

    def details(self) -> PolicyDetails:
        return PolicyDetails(**{name: self.cleaned_data[name] for name in self._row_fields()})


class AgePhaseForm(_SeenVersion, PlanningForm):
    name = forms.CharField(
        label=_("名称"),
        max_length=60,
        help_text=_("住民のトップページに表示します（例：65歳以上の方）。"),
    )
    minimum_age = _number(
        _("年齢（以上）"), 0, 130, help_text=_("接種日の年齢がこの歳以上の方が対象です。")
    )
    opens_on = forms.DateField(label=_("予約開始日"), widget=_date_input())
    opens_time = forms.TimeField(label=_("予約開始時刻"), widget=_time_input())

    def __init__(self, *args: Any, editing: AgePhase | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing

    def clean_minimum_age(self) -> int:
        """One phase per age: a second one with the same age would only ever repeat the
        first (the earlier opening decides), and the two would be told apart by nobody."""
        age: int = self.cleaned_data["minimum_age"]
        others = AgePhase.objects.filter(minimum_age=age)
        if self.editing is not None:
            others = others.exclude(pk=self.editing.pk)
        same = others.first()
        if same is not None:
            raise forms.ValidationError(
                _(
                    "%(age)s歳以上の区分「%(name)s」（予約開始 %(opens)s）がすでにあります。"
                    "開始日時を変えるときは、その区分を変更してください。"
                )
                % {
                    "age": age,
                    "name": same.name,
                    "opens": formats.date_format(
                        same.opens_at.astimezone(JAPAN), str(_("Y年n月j日 H:i"))
                    ),
                }
            )
        return age

    def clean(self) -> dict[str, Any]:
        """A phase that changes who may book when: not one inside another phase (everyone it
        names may already book by its opening), nor one that would leave another inside it
        — the residents' top page would tell them to wait for a date already past for them."""
        data = super().clean() or {}
        if not {"minimum_age", "opens_on", "opens_time"} <= set(data):
            return data
        age, opens_at = data["minimum_age"], self.details().opens_at
        others = AgePhase.objects.exclude(minimum_age=age)
        if self.editing is not None:
            others = others.exclude(pk=self.editing.pk)
        for other in others.order_by("opens_at", "minimum_age"):
            named = {
                "name": other.name,
                "age": other.minimum_age,
                "opens": formats.date_format(
                    other.opens_at.astimezone(JAPAN), str(_("Y年n月j日 H:i"))
                ),
            }
            if other.minimum_age <= age and other.opens_at <= opens_at:
                raise forms.ValidationError(
                    _(
                        "この区分の方は、区分「%(name)s」（%(age)s歳以上、予約開始 %(opens)s）で"
                        "それより前から予約できます。このままでは住民のページで、すでに予約できる方に"
                        "開始日を待つよう案内することになります。年齢か予約開始日時を見直してください。"
                    )
                    % named
                )
            if other.minimum_age >= age and other.opens_at >= opens_at:
                raise forms.ValidationError(
                    _(
                        "この区分を登録すると、区分「%(name)s」"
                        "（%(age)s歳以上、予約開始 %(opens)s）の方は"
                        "それより前から予約できるようになり、住民のページの「%(name)s」の開始日が"
                        "誤りになります。先に「%(name)s」を変更するか削除してください。"
                    )
                    % named
                )
        return data

    @classmethod
    def initial_for(cls, phase: AgePhase) -> dict[str, Any]:
        opens = phase.opens_at.astimezone(JAPAN)
        return {
            "name": phase.name,
            "minimum_age": phase.minimum_age,
            "opens_on": opens.date(),
            "opens_time": opens.time().replace(second=0, microsecond=0),
            "version": rules_version(phase, PhaseDetails),
        }

    def details(self) -> PhaseDetails:
        data = self.cleaned_data
        opens_at = datetime.combine(data["opens_on"], data["opens_time"], tzinfo=JAPAN)
        return PhaseDetails(name=data["name"], minimum_age=data["minimum_age"], opens_at=opens_at)


class VaccineForm(_SeenVersion, PlanningForm):
    code = forms.SlugField(
        label=_("コード"),
        max_length=30,
        help_text=_("半角英数字とハイフン（例：pfizer）。登録後は変更できません。"),
        error_messages={
            "invalid": _("コードは半角の英数字とハイフンで入力してください（例：pfizer）。")
        },
    )
    name = forms.CharField(label=_("ワクチン名"), max_length=60, validators=[refuse_formula_start])
    maker = forms.CharField(
        label=_("製造販売業者"), max_length=60, required=False, validators=[refuse_formula_start]
    )
    doses_in_series = _number(_("接種回数（初回シリーズ）"), 1, 9)
    interval_days = _number(
        _("接種間隔（日）"),
        0,
        3650,
        help_text=_("前の回の接種日から、次の回を予約できるまでの日数（例：ファイザー社 19）。"),
    )
    minimum_age = _number(_("対象年齢（下限）"), 0, 130)
    active = forms.BooleanField(
        label=_("予約を受け付ける"),
        required=False,
        initial=True,
        help_text=_("外すと、このワクチンの枠は住民にもコールセンターにも表示されません。"),
    )

    def __init__(self, *args: Any, product: VaccineProduct | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if product is not None:
            # The code names the vaccine in slots and records: shown, never changed.
            self.fields["code"].disabled = True
            self.fields["code"].initial = product.code

    @classmethod
    def initial_for(cls, product: VaccineProduct) -> dict[str, Any]:
        return {name: getattr(product, name) for name in cls._row_fields()} | {
            "version": rules_version(product, VaccineDetails)
        }

    def details(self) -> VaccineDetails:
        return VaccineDetails(**{name: self.cleaned_data[name] for name in self._row_fields()})
