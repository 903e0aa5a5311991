from __future__ import annotations

import re
import unicodedata
from datetime import time

from django import forms
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.services.notification_settings import BODY_MAX, SUBJECT_MAX, SUBJECT_REQUIRED

# Reminders reach phones: not in the night. The beat queues them every ten minutes, so a
# time late in the evening would also leave no pass before the day ends.
EARLIEST_REMINDER = time(6, 0)
LATEST_REMINDER = time(21, 0)
_SENDER_ID = re.compile(r"[A-Za-z0-9]{1,11}")
_PHONE = re.compile(r"[0-9][0-9-]{5,18}[0-9]")


class PauseForm(ConsoleForm):
    action = forms.ChoiceField(
        choices=[("pause", _("一時停止")), ("resume", _("再開"))], widget=forms.HiddenInput
    )


class SettingsForm(ConsoleForm):
    reminder_time = forms.TimeField(
        label=_("前日通知の時刻"),
        help_text=_("予約日の前日、この時刻（日本時間）になったら送り始めます。例：09:00"),
        input_formats=["%H:%M"],
        widget=forms.TimeInput(format="%H:%M", attrs={"type": "time"}),
        error_messages={
            "required": _("前日通知の時刻を入力してください。"),
            "invalid": _("前日通知の時刻は「09:00」のように、時と分で入力してください。"),
        },
    )
    reminders_enabled = forms.BooleanField(label=_("前日通知を送る"), required=False)
    email_from = forms.EmailField(
        label=_("送信元メールアドレス"),
        required=False,
        max_length=254,
        help_text=_("Amazon SESで確認済みの、自治体のアドレスです。"),
        error_messages={"invalid": _("送信元メールアドレスの形式が正しくありません。")},
    )
    sms_sender_id = forms.CharField(
        label=_("SMS送信者ID"),
        required=False,
        max_length=11,
        help_text=_("半角英数字11文字以内（英字を1文字以上）。空欄なら番号から送られます。"),
        error_messages={"max_length": _("SMS送信者IDは11文字以内で入力してください。")},
    )
    contact_phone = forms.CharField(
        label=_("問い合わせ電話番号"),
        required=False,
        max_length=20,
        help_text=_(
            "お知らせの最後に載せる、コールセンターの電話番号です。例：042-000-0000。"
            "空欄のときは、予約の受付条件のコールセンター電話番号を載せます。"
        ),
        error_messages={"max_length": _("問い合わせ電話番号は20文字以内で入力してください。")},
    )

    def clean_reminder_time(self) -> time:
        value: time = self.cleaned_data["reminder_time"]
        if not EARLIEST_REMINDER <= value <= LATEST_REMINDER:
            raise forms.ValidationError(
                _("前日通知の時刻は、6:00から21:00の間で指定してください（夜間に届かないように）。")
            )
        return value

    def clean_sms_sender_id(self) -> str:
        value = unicodedata.normalize("NFKC", self.cleaned_data["sms_sender_id"]).strip()
        if value and (not _SENDER_ID.fullmatch(value) or value.isdigit()):
            raise forms.ValidationError(
                _("SMS送信者IDは半角英数字11文字以内で、英字を1文字以上含めてください。")
            )
        return value

    def clean_contact_phone(self) -> str:
        value = unicodedata.normalize("NFKC", self.cleaned_data["contact_phone"]).strip()
        value = value.replace("ー", "-").replace("−", "-")
        if value and not _PHONE.fullmatch(value):
            raise forms.ValidationError(
                _("問い合わせ電話番号は、数字とハイフンで入力してください（例：042-000-0000）。")
            )
        return value


class TemplateForm(ConsoleForm):
    subject = forms.CharField(
        label=_("件名"),
        required=False,
        max_length=SUBJECT_MAX,
        error_messages={"max_length": _("件名は%(limit_value)d文字以内にしてください。")},
    )
    body = forms.CharField(
        label=_("本文"),
        max_length=BODY_MAX,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14}),
        error_messages={
            "required": _("本文を入力してください。"),
            "max_length": _("本文は%(limit_value)d文字以内にしてください。"),
        },
    )
    # The text as the form showed it (template_version): another admin's change in between
    # is refused, never saved over.
    version = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    def __init__(self, *args: object, email: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not email:
            del self.fields["subject"]
        else:
            self.fields["subject"].required = True
            self.fields["subject"].error_messages["required"] = _(SUBJECT_REQUIRED)


class LineChannelForm(ConsoleForm):
    login_channel_id = forms.CharField(
        label=_("LINEログインのチャネルID"),
        max_length=20,
        help_text=_("LINE Developersコンソールの「LINEログイン」チャネルの数字のIDです。"),
        error_messages={"required": _("チャネルIDを入力してください。")},
    )
    login_channel_secret = forms.CharField(
        label=_("LINEログインのチャネルシークレット"),
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        error_messages={"required": _("チャネルシークレットを入力してください。")},
    )
    messaging_access_token = forms.CharField(
        label=_("Messaging APIのチャネルアクセストークン（長期）"),
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("保存すると暗号化され、この画面にも二度と表示されません。"),
        error_messages={"required": _("チャネルアクセストークンを入力してください。")},
    )
