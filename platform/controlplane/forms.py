from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from sesshu.trail_text import refuse_identifiers
from tenants.codes import code_problem
from tenants.models import Municipality
from tenants.services import WAITING_ROOM_MOST_PER_MINUTE


class Form(forms.Form):
    """Labels without Django's trailing colon (it reads oddly after Japanese labels)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class LoginForm(Form):
    username = forms.CharField(
        label=_("ユーザー名"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        label=_("パスワード"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    token = forms.CharField(
        label=_("確認コード（6桁）"),
        help_text=_("認証アプリに表示されている6桁の数字です。"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class SearchForm(Form):
    q = forms.CharField(
        label=_("市区町村コードまたは名称で検索"),
        max_length=50,
        required=False,
        widget=forms.TextInput(attrs={"type": "search"}),
    )


class ProvisionForm(Form):
    code = forms.CharField(
        label=_("市区町村コード（6桁）"),
        help_text=_("全国地方公共団体コード。6桁目は検査数字です。"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    name = forms.CharField(
        label=_("名称（省略可）"),
        help_text=_("省略すると全国の一覧の名称を使います。"),
        max_length=50,
        required=False,
    )
    subdomain = forms.CharField(
        label=_("サブドメイン"),
        max_length=32,
        error_messages={
            "max_length": _(
                "サブドメインは32文字以内で入力してください（入力は%(show_value)d文字です）。"
            )
        },
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    admin_email = forms.EmailField(
        label=_("最初の管理者のメールアドレス"),
        help_text=_("この方に管理者の初期設定リンクを渡してください。"),
    )
    login_mode = forms.ChoiceField(
        label=_("住民のログイン方式"),
        choices=Municipality.LoginMode.choices,
        initial=Municipality.LoginMode.VOUCHER_CODE,
        help_text=_(
            "あとから変えられません。市区町村と決めてから選んでください。"
            "「アカウント」：住民がメールアドレスとパスワードで登録し、接種券番号と生年月日で"
            "自分の接種券を結びつけます。"
            "「接種券番号＋生年月日」：郵送するものは増えませんが、生年月日を知る人は"
            "なりすませます。"
            "「接種券番号＋生年月日（初回のみ）、以後パスワード」：初回だけ生年月日で、以後は"
            "パスワードです。"
            "「接種券番号＋認証コード、以後パスワード」：名簿の取込ごとに発行する認証コード"
            "（一度だけダウンロードできるファイル）を接種券と一緒に印刷・郵送し、初回はその"
            "コードで、以後はパスワードでログインします。番号と生年月日の組み合わせを推測"
            "されないため、最も安全です。"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Said, not cut: a browser's maxlength drops what is typed past it without a word,
        # and a cut name would become the municipality's address for good.
        self.fields["subdomain"].widget.attrs.pop("maxlength", None)
        self.fields["subdomain"].help_text = gettext(
            "英小文字・数字・ハイフン。例: kodaira → kodaira.%(base)s"
        ) % {"base": settings.SESSHU_BASE_DOMAIN}

    def clean_code(self) -> str:
        # The same check the provisioning service makes, here so the message sits on the field.
        code = _digits_typed(self.cleaned_data["code"])
        problem = code_problem(code)
        if problem:
            raise forms.ValidationError(problem, code="invalid_municipality_code")
        return code


class AdminReinviteForm(Form):
    admin_email = forms.EmailField(
        label=_("最初の管理者のメールアドレス"),
        help_text=_("この方に新しい初期設定リンクを渡してください。前のリンクは使えなくなります。"),
    )


class AdminRecoverForm(Form):
    email = forms.EmailField(
        label=_("ログインできなくなった管理者のメールアドレス"),
        help_text=_(
            "職員コンソールにログインするときのメールアドレスです。再設定リンクはこのアドレスに"
            "だけ送られ、この画面には表示されません。"
        ),
    )
    confirmed = forms.BooleanField(
        label=_(
            "市区町村からの依頼であることを、登録されている連絡先への折り返しの電話など、"
            "このメール以外の方法で確かめました"
        ),
        error_messages={"required": _("依頼の確認をしてから、チェックを入れてください。")},
    )


class SuspendForm(Form):
    reason = forms.CharField(
        label=_("停止の理由"),
        help_text=_("監査記録に残ります。住民の個人情報は書かないでください。"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_identifiers],
    )


class ConfirmForm(Form):
    """An empty form: the confirmation page's button is the confirmation."""


class DecommissionForm(Form):
    confirmation = forms.CharField(
        label=_("確認のため、この市区町村のコード（6桁）を入力してください"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_confirmation(self) -> str:
        return _digits_typed(self.cleaned_data["confirmation"])


def _digits_typed(text: str) -> str:
    """A code as typed with a Japanese keyboard: full-width digits and spaces folded."""
    return "".join(unicodedata.normalize("NFKC", text).split())


class WaitingRoomForm(Form):
    per_minute = forms.IntegerField(
        label=_("1分あたりに住民のページへ入れる人数"),
        required=False,
        min_value=0,
        max_value=WAITING_ROOM_MOST_PER_MINUTE,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        error_messages={
            "invalid": _("半角または全角の数字（整数）で入力してください。"),
            "min_value": _("0以上の数を入力してください。"),
            "max_value": _("%(limit_value)s以下の数を入力してください。"),
        },
    )

    def __init__(self, *args: Any, platform_rate: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = (
            gettext("1分あたり%(rate)s人") % {"rate": f"{platform_rate:,}"}
            if platform_rate
            else gettext("待合室を使わない")
        )
        self.fields["per_minute"].help_text = gettext(
            "空欄にすると、プラットフォームの既定（%(default)s）に従います。"
            "0にすると、この市区町村では待合室を使いません。"
            "変更は、すでに待っている住民の順番にも反映されます。"
        ) % {"default": default}
