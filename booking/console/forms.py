from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from booking.console.totp import DIGITS, normalize_code, totp_match
from booking.models import StaffInvitation, StaffMember


class ConsoleForm(forms.Form):
    """Rendered by one template; Django ties help and error text to each input
    (``aria-describedby``, ``aria-invalid``)."""

    template_name = "booking/console/form.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # no colon after Japanese labels
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # A required check box is a confirmation: say so, not Django's "required".
            if isinstance(field, forms.BooleanField) and field.required:
                field.error_messages["required"] = _("確認のチェックを入れてください。")


def _code_field(label: Any) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=20,
        help_text=_("認証アプリに表示されている6桁の数字です。"),
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9０-９ ]*",
                "size": DIGITS + 2,
            }
        ),
    )


class LoginForm(ConsoleForm):
    # A plain text field, not EmailField: a malformed address must fail exactly like a
    # wrong password (one message for every failure).
    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("パスワード"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = _code_field(_("認証コード"))


class SetupPasswordForm(ConsoleForm):
    password1 = forms.CharField(
        label=_("パスワード"),
        max_length=4096,
        strip=False,
        help_text=_(
            "10文字以上。数字だけのもの、よく使われるもの、メールアドレスに似たものは使えません。"
        ),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )
    password2 = forms.CharField(
        label=_("パスワード（確認のためもう一度）"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password2(self) -> str:
        first = self.cleaned_data.get("password1")
        second = self.cleaned_data["password2"]
        if first is not None and first != second:
            raise forms.ValidationError(_("2つのパスワードが一致しません。"))
        return second

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password1")
        if password and "password1" not in self.errors:
            user = get_user_model()(username=self.email, email=self.email)
            try:
                password_validation.validate_password(password, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class SetupDeviceForm(ConsoleForm):
    code = _code_field(_("認証コード"))

    def __init__(self, *args: Any, key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key = key
        self.matched_step: int | None = None

    def clean_code(self) -> str:
        code = normalize_code(self.cleaned_data["code"])
        self.matched_step = totp_match(key=self.key, code=code)
        if self.matched_step is None:
            raise forms.ValidationError(
                _(
                    "認証コードが正しくありません。アプリに今表示されている6桁の数字を"
                    "入力してください。端末の時刻が正しいかもご確認ください。"
                )
            )
        return code


class InviteForm(ConsoleForm):
    email = forms.EmailField(
        label=_("メールアドレス"),
        max_length=254,
        help_text=_("招待する職員の業務用メールアドレス。ログインIDになります。"),
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    # No preselected role: an admin account is never created by leaving the default.
    role = forms.ChoiceField(
        label=_("役割"),
        choices=[("", _("選択してください")), *StaffMember.Role.choices],
        error_messages={"required": _("役割を選んでください。")},
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError(_("このメールアドレスの職員アカウントは既にあります。"))
        # Two open invitations for one address: whichever link is opened first would decide
        # the role, and the other would fail only at its last step.
        pending = (
            StaffInvitation.objects.filter(
                email=email, resets=None, accepted_at=None, expires_at__gt=timezone.now()
            )
            .order_by("-created_at")
            .first()
        )
        if pending is not None:
            raise forms.ValidationError(
                _(
                    "このメールアドレスには、まだ使われていない招待があります（役割：%(role)s）。"
                    "役割を変えるときは、「使われていない招待・再設定リンク」の一覧でその招待を取り消してから、招待し直してください。"
                )
                % {"role": pending.get_role_display()}
            )
        return email


class RoleForm(ConsoleForm):
    role = forms.ChoiceField(
        label=_("役割"),
        choices=StaffMember.Role.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "次の操作から新しい役割になります。会場スタッフでなくなると、担当会場は外れます。"
        ),
    )
