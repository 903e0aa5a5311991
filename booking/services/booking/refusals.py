"""Why a booking was refused: the codes programs read and the messages residents read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext as _

REFUSAL_CODES = (
    "full",
    "channel_closed",
    "slot_closed",
    "window_not_open",
    "window_closed",
    "not_eligible_yet",
    "below_product_age",
    "too_soon_after_previous_dose",
    "different_product",
    "series_complete",
    "already_booked",
    "voucher_withdrawn",
    "cutoff_passed",
    "no_longer_booked",
    "changed_meanwhile",
    "moved_before_cancel",
    "not_today_at_venue",
    "slot_ended",
)


def _call_centre(phone: str) -> str:
    if phone:
        return _("コールセンター（電話 %(phone)s）") % {"phone": phone}
    return _("コールセンター")


def _refusal_message(code: str, values: dict[str, Any]) -> str:
    """What the resident reads: what happened and what to do next (UX.md)."""
    centre = _call_centre(str(values.get("phone") or ""))
    if code == "full":
        return _(
            "申し訳ありません。この予約枠はちょうど満員になりました。"
            "ほかの日時・会場をお選びください。取消が出ると空きが表示されます。"
        )
    if code == "channel_closed":
        return _(
            "この予約枠は、この受付方法では予約できません。"
            "ほかの日時・会場をお選びいただくか、%(centre)sにお問い合わせください。"
        ) % {"centre": centre}
    if code == "slot_closed":
        return _("この予約枠は受付を停止しています。ほかの日時・会場をお選びください。")
    if code == "window_not_open":
        if values.get("at"):  # a day's slots open together, at the policy's time
            return (
                _(
                    "この日の予約はまだ始まっていません。予約は接種日の%(days)s日前の%(at)sから"
                    "受け付けます。%(opens)s以降にもう一度お試しいただくか、もっと近い日を"
                    "お選びください。"
                )
                % values
            )
        return (
            _(
                "この時間の枠の予約はまだ始まっていません。予約は、接種の開始時刻の%(days)s日前から"
                "枠ごとに受け付けます。%(opens)s以降にもう一度お試しいただくか、もっと近い日時を"
                "お選びください。"
            )
            % values
        )
    if code == "window_closed":
        return (
            _(
                "この日時の予約受付は終了しました（接種開始の%(hours)s時間前まで）。"
                "ほかの日時をお選びください。"
            )
            % values
        )
    if code == "not_eligible_yet":
        return _(
            "現在はまだ予約の対象ではありません。対象となる年齢と予約開始日は、"
            "市区町村のお知らせでご確認のうえ、開始日以降にご予約ください。"
            "ご不明な点は%(centre)sへお問い合わせください。"
        ) % {"centre": centre}
    if code == "below_product_age":
        return (
            _(
                "このワクチン（%(product)s）は%(age)s歳以上の方が対象です。"
                "ワクチンで絞り込んで、ほかのワクチンの予約枠をお選びください。"
            )
            % values
        )
    if code == "too_soon_after_previous_dose" and "latest" in values:
        return (
            _(
                "%(following)s回目の予約との間を%(days)s日以上あける必要があります。"
                "%(latest)s以前の日時をお選びいただくか、先に%(following)s回目の予約を変更してください。"
            )
            % values
        )
    if code == "too_soon_after_previous_dose":
        return (
            _(
                "%(dose)s回目は、前の接種から%(days)s日以上あける必要があります。"
                "%(earliest)s以降の日時をお選びください。"
            )
            % values
        )
    if code == "different_product":
        return (
            _(
                "%(dose)s回目は、前の接種と同じワクチン（%(product)s）で予約してください。"
                "ワクチンで絞り込むと選びやすくなります。"
            )
            % values
        )
    if code == "series_complete":
        return _(
            "この接種券で予約できる回数の接種は、すでに済んでいるか予約済みです。"
            "追加の接種については市区町村のお知らせをご確認ください。"
        )
    if code == "already_booked":
        return _(
            "すでにご予約があります。予約の確認・変更・取消は「予約の確認」からできます。"
            "次の回は、いまの予約の接種が済んでからご予約ください。"
        )
    if code == "voucher_withdrawn":
        return _(
            "この接種券ではご予約いただけません。お手数ですが%(centre)sにお問い合わせください。"
        ) % {"centre": centre}
    if code == "cutoff_passed":
        return _(
            "締切（接種開始の%(hours)s時間前）を過ぎたため、この予約はここでは変更・取消できません。"
            "%(centre)sにお電話ください。"
        ) % {"hours": values.get("hours", ""), "centre": centre}
    if code == "no_longer_booked":
        return _(
            "この予約は、すでに取り消されたか、会場での受付が済んでいるため、変更・取消できません。"
            "マイページでいまの予約をご確認ください。"
        )
    if code == "changed_meanwhile":
        return _(
            "この予約は、この画面を開いたあとに変更されています（いまの予約：%(now)s）。"
            "変更しませんでした。いまの予約を確かめてから、もう一度お選びください。"
        ) % {"now": values.get("now", "")}
    if code == "moved_before_cancel":
        return _(
            "この予約は、この画面を開いたあとに日時・会場が変更されています（いまの予約：%(now)s）。"
            "取り消していません。いまの予約を確かめて、取り消すときはもう一度押してください。"
        ) % {"now": values.get("now", "")}
    if code == "not_today_at_venue":
        return _("会場での当日の受付は、本日の予約枠にだけできます。")
    if code == "slot_ended":
        return _("この予約枠の時間は終わっています。これから始まる枠か、いまの枠を選んでください。")
    raise ValueError(f"unknown refusal code {code!r}")


def _staff_message(code: str, values: dict[str, Any]) -> str | None:
    """What a call-centre operator reads instead, where the resident's words would send them
    to the call centre or to the resident's own pages (None: the resident's words do)."""
    if code == "full":
        return _(
            "この予約枠のコールセンターの受付枠が、ちょうど埋まりました。ほかの日時・会場を"
            "お選びください。ウェブ・LINEの受付枠は別に数えるため、インターネットでは予約"
            "できる場合があります。"
        )
    if code == "already_booked":
        return _(
            "この方には、この回の予約がすでにあるか、いまの予約の接種がまだ済んでいません。"
            "予約の一覧を確認し、日時を変えるときは変更してください。"
        )
    if code == "cutoff_passed":
        return _(
            "締切（接種開始の%(hours)s時間前）を過ぎているため、日時・会場は変更できません。"
            "取り消してから新しく予約してください。"
        ) % {"hours": values.get("hours", "")}
    if code == "voucher_withdrawn":
        return _("この接種券は対象外（転出・死亡等）のため、予約できません。")
    if code == "not_eligible_yet":
        # Said where no opening is known for the caller's age (AgeWindow gives the date
        # where one is): there is no date to give.
        return _(
            "この方は、いまはまだ予約の対象ではありません。この方の年齢が入る年齢区分で、"
            "受付開始日が決まっているものはありません。市区町村のお知らせで対象になったら"
            "予約できることをお伝えください。"
        )
    if code == "channel_closed":
        return _("この予約枠にはコールセンターの受付枠がありません。ほかの枠を選んでください。")
    if code == "no_longer_booked":
        return _(
            "この予約は、すでに取り消されたか、会場での受付・接種が済んでいます"
            "（ほかの方の操作や、ご本人のウェブでの操作の場合もあります）。予約の一覧で確かめてください。"
        )
    if code == "changed_meanwhile":
        return _(
            "この予約は、この画面を開いたあとに別の操作で変更されました（いまの予約：%(now)s）。"
            "変更していません。いまの予約をご本人にお伝えし、変えるときはもう一度選んでください。"
        ) % {"now": values.get("now", "")}
    if code == "moved_before_cancel":
        return _(
            "この予約は、この画面を開いたあとに別の操作で日時・会場が変更されました"
            "（いまの予約：%(now)s）。取り消していません。いまの予約をご本人に確かめ、"
            "それでも取り消すときはもう一度押してください。"
        ) % {"now": values.get("now", "")}
    return None


def not_eligible_yet_message(
    phase_opens_at: datetime | None, phone: str, *, for_staff: bool = False
) -> str:
    """What a resident whose age no phase opens to yet is told before choosing anything:
    when their turn opens, where the municipality has set it (``AgeWindow``), or the
    refusal the booking service would give, which says where to ask. ``for_staff``: the
    same for the call-centre operator, about the caller."""
    if phase_opens_at is None:
        refused = BookingRefused("not_eligible_yet", phone=phone)
        return refused.staff_message if for_staff else refused.message
    opens = timezone.localtime(phase_opens_at)
    when = formats.date_format(opens, _("Y年n月j日（D）H:i"))
    if for_staff:
        return _(
            "この方の年齢の予約受付は%(when)sに始まります。それまでは予約できないことと、"
            "受付開始の日時をお伝えください。"
        ) % {"when": when}
    return _("あなたの年齢の方の予約受付は%(when)sに始まります。その日時以降にご予約ください。") % {
        "when": when
    }


class BookingRefused(Exception):
    """A booking rule said no. ``code`` is for programs, ``message`` for the resident.

    ``dose`` and ``slot_id`` say which booking was refused when two are made together.
    """

    def __init__(
        self, code: str, *, dose: int | None = None, slot_id: int | None = None, **values: Any
    ) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code = code
        self.dose = dose
        self.slot_id = slot_id
        self.message = _refusal_message(code, {"dose": dose, **values})
        self._values = values
        super().__init__(code)

    @property
    def staff_message(self) -> str:
        """The message for a call-centre operator (made when asked: residents' refusals in a
        rush never need it)."""
        return _staff_message(self.code, self._values) or self.message

    @property
    def message_naming_dose(self) -> str:
        """The message when two doses are booked together: it says which was refused."""
        return self._naming_dose(self.message)

    @property
    def staff_message_naming_dose(self) -> str:
        return self._naming_dose(self.staff_message)

    def _naming_dose(self, message: str) -> str:
        if self.dose is None:
            return message
        return _("%(dose)s回目の予約：%(message)s") % {"dose": self.dose, "message": message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
