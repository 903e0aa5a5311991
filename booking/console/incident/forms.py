from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from booking.console.forms import ConsoleForm
from booking.models import Incident


class IncidentStartForm(ConsoleForm):
    notice = forms.CharField(
        label=_("住民向けサイトに表示し、通知に同意した住民へ送るお知らせ"),
        max_length=Incident.NOTICE_MAX_LENGTH,
        help_text=_("個人の情報は書かないでください。SMSでも送られるため、短く分かりやすく。"),
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    confirm = forms.BooleanField(
        label=_(
            "住民のログインと利用登録を止め、すべての住民のパスワードを無効にし、"
            "お知らせを送ることを確認しました"
        ),
        required=True,
    )

    def __init__(self, *args: Any, passwords: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not passwords:  # voucher number and birth date: no password to forget
            self.fields["confirm"].label = _(
                "住民のログインと利用登録を止め、ログイン中の住民のセッションを終了し、"
                "お知らせを送ることを確認しました"
            )


class IncidentEndForm(ConsoleForm):
    notice = forms.CharField(
        label=_("再開のお知らせ（通知に同意した住民へ送ります）"),
        max_length=Incident.NOTICE_MAX_LENGTH,
        required=False,
        help_text=_("停止のお知らせを受け取った住民に、再開を知らせます。空欄にすると送りません。"),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    confirm = forms.BooleanField(
        label=_("原因への対応が済み、住民向けサイトを再開してよいことを確認しました"),
        required=True,
    )


class LostLettersForm(ConsoleForm):
    numbers = forms.CharField(
        label=_("接種券番号（1行に1つ、または範囲）"),
        max_length=200_000,
        help_text=_(
            "例：%(first)s、または %(first)s-%(last)s。改行・空白・読点で区切って、"
            "いくつでも（1万件まで）。"
        ),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "inputmode": "numeric"}),
        error_messages={"required": _("接種券番号を入力してください。")},
    )
    confirm = forms.BooleanField(label=_("入力した接種券番号を確かめました"), required=True)

    def __init__(self, *args: Any, code: str, **kwargs: Any) -> None:
        """``code``: the municipality's, whose vouchers the examples look like."""
        super().__init__(*args, **kwargs)
        field = self.fields["numbers"]
        field.help_text = field.help_text % {"first": f"{code}0001", "last": f"{code}0050"}


class NetworksForm(ConsoleForm):
    networks = forms.CharField(
        label=_("職員コンソールを使えるネットワーク"),
        required=False,
        max_length=5000,
        help_text=_(
            "1行に1つ、CIDR形式で（例：203.0.113.0/24 本庁舎）。空にすると、"
            "どこからでも使えるようになります。"
        ),
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
