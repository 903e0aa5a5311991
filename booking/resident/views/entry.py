"""The way in: top page, login in the municipality's mode, registration (``account`` mode),
the first password, logout, and the LINE rich menu's entry."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone, translation
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.middleware import client_ip
from booking.models import Voucher
from booking.resident import throttle
from booking.resident.access import resident_required
from booking.resident.forms import (
    AccountCreateForm,
    AccountLoginForm,
    BirthDateLoginForm,
    CodeLoginForm,
    PasswordLoginForm,
    PasswordSetForm,
)
from booking.resident.selectors import age_phases, incident_notice
from booking.resident.services import (
    LoginRefused,
    LoginResult,
    PasswordAlreadySet,
    RegistrationRefused,
    SiteClosed,
    resident_account_create,
    resident_login_account,
    resident_login_birth_date,
    resident_login_code,
    resident_login_malformed,
    resident_login_password,
    resident_password_set,
    resident_registration_check,
)
from booking.resident.sessions import (
    mark_from_line,
    next_after_login,
    password_pending,
    registration_forget,
    registration_remember,
    registration_voucher,
    resident_login,
    resident_logout,
    resident_of,
    resident_password_done,
    resident_seen,
    resident_session_left,
)
from booking.resident.views.common import municipality_of, page
from booking.selectors.residents import booking_of
from sesshu.logs import answered_on_purpose
from tenants.models import Municipality

Mode = Municipality.LoginMode

# One message per form, whatever went wrong (ASVS 6.3.8): nothing says whether the voucher
# exists, is withdrawn, or which of the two fields was wrong.
FAILED = {
    "birth_date": gettext_lazy("接種券番号または生年月日が正しくありません。"),
    "registration": gettext_lazy("接種券番号または生年月日が正しくありません。"),
    # Said to everyone alike: a resident typing the letter's code again after setting a
    # password learns where to go, and nobody learns whether a code was used.
    "code": gettext_lazy(
        "接種券番号または認証コードが正しくありません。認証コードは最初のログインの1回だけ"
        "使えます。パスワードを設定した方は「パスワードでログイン」からログインしてください。"
    ),
    "password": gettext_lazy("接種券番号またはパスワードが正しくありません。"),
    "account": gettext_lazy("メールアドレスまたはパスワードが正しくありません。"),
}
# After each of them: what to do next, the same for every failure.
FAILED_NEXT = gettext_lazy(
    "お手元の接種券などで確かめて、もう一度入力してください。"
    "続けて間違えると、しばらくログインできなくなります。"
)
# Said after every failure alike (nothing about the voucher is revealed): a resident whose
# voucher can no longer log in (moved, withdrawn, stopped by staff) learns where to go.
FAILED_CALL = gettext_lazy(
    "正しく入力してもログインできないときは、接種券が使えなくなっている場合があります。"
    "コールセンターにお電話ください。"
)
# A form sent with a box left empty or a value of the wrong shape: the boxes say what.
FIX_FIELDS = gettext_lazy(
    "入力していない項目や、形の正しくない項目があります。項目ごとの説明（「！」の印）を見て直してください。"
)
THROTTLED = gettext_lazy(
    "ログインの試行が多すぎます。しばらく（長いときは1時間ほど）時間をおいてから、"
    "もう一度お試しください。お急ぎの方はコールセンターにお電話ください。"
)
EXTRA_STEP = gettext_lazy(
    "ただいま、なりすましを防ぐために確認を強化しています。"
    "お名前（カタカナ）もあわせて入力してください。"
)
# What a refused login shows again of what was typed: who the visitor says they are, never
# the secret that goes with it.
IDENTIFYING = ("voucher_number", "email")
# Kept out of error reports (the voucher number and e-mail address too).
SENSITIVE = (
    "voucher_number",
    "birth_date_year",
    "birth_date_month",
    "birth_date_day",
    "name_kana",
    "code",
    "email",
    "password",
    "password1",
    "password2",
)


_FIRST_FORMS: dict[str, type[forms.Form]] = {
    Mode.VOUCHER_DOB: BirthDateLoginForm,
    Mode.VOUCHER_DOB_THEN_PASSWORD: BirthDateLoginForm,
    Mode.VOUCHER_CODE: CodeLoginForm,
    Mode.ACCOUNT: AccountLoginForm,
}


def _first_form_class(mode: str) -> type[forms.Form]:
    return _FIRST_FORMS[mode]


def _method(mode: str) -> str:
    return {
        Mode.VOUCHER_DOB: "birth_date",
        Mode.VOUCHER_DOB_THEN_PASSWORD: "birth_date",
        Mode.VOUCHER_CODE: "code",
        Mode.ACCOUNT: "account",
    }[Mode(mode)]


def _form(form_class: type[forms.Form], *, extra_step: bool, **kwargs: Any) -> forms.Form:
    if form_class is BirthDateLoginForm:
        return BirthDateLoginForm(extra_step=extra_step, **kwargs)
    return form_class(**kwargs)


def _form_html(form: forms.Form, *, pointed: bool = False) -> str:
    """The login form as HTML. An empty one, not pointed at an error (what nearly every login
    and top page shows, the pages every resident opens first in a rush), is the same for
    everyone: made once per process for its kind, step, language and year (the birth-date
    widget's last year), instead of through Django's form templates each time (a millisecond
    of each page). Shared by every municipality: a login form must show nothing of one
    (its name, its mode's wording: those are in the page around the form)."""
    if pointed or form.is_bound or form.initial:
        return str(form)
    return _empty_form(type(form), extra_step=bool(getattr(form, "extra_step", False)))


def _empty_form(form_class: type[forms.Form], *, extra_step: bool) -> str:
    """The empty login form's HTML (:func:`_form_html`), without making a form first."""
    return _empty_form_html(form_class, extra_step, get_language(), timezone.localdate().year)


@lru_cache(maxsize=64)
def _empty_form_html(
    form_class: type[forms.Form], extra_step: bool, language: str, year: int
) -> str:
    with translation.override(language):
        return str(_form(form_class, extra_step=extra_step))


def _closed(municipality: Municipality) -> bool:
    return municipality.status != Municipality.Status.ACTIVE


def _after_login(request: HttpRequest, result: LoginResult) -> HttpResponse:
    resident_login(request, voucher=result.voucher, password_required=result.password_required)
    if result.password_required:
        return redirect("resident:password_set")
    wanted = next_after_login(request)
    if wanted is not None and not _page_of(request, result.voucher, wanted):
        wanted = None
    return redirect(wanted or "resident:mypage")


def _page_of(request: HttpRequest, voucher: Voucher, path: str) -> bool:
    """Whether a page asked for before the login is one for this resident to go on to: a
    page of the site, and if it names a booking (a reminder's link; a page of whoever used
    the browser before, reached with Back after their logout), a booking of theirs."""
    try:
        match = resolve(urlsplit(path).path, urlconf=getattr(request, "urlconf", None))
    except Resolver404:
        return False
    number = match.kwargs.get("booking_number")
    if number is None:
        return True
    try:
        booking_of(voucher, number)
    except Http404:
        return False
    return True


@require_http_methods(["GET", "HEAD"])
def top(request: HttpRequest) -> HttpResponse:
    municipality = municipality_of(request)
    voucher, _reason = resident_of(request)
    if voucher is not None:
        request.voucher = voucher  # type: ignore[attr-defined]
    mode = municipality.login_mode
    incident = municipality.status == Municipality.Status.INCIDENT
    extra_step = mode in (Mode.VOUCHER_DOB, Mode.VOUCHER_DOB_THEN_PASSWORD) and (
        throttle.under_attack_shown()
    )
    return page(
        request,
        "booking/resident/top.html",
        {
            "phases": age_phases(),
            "incident": incident,
            "incident_notice": incident_notice() if incident else "",
            "closed": _closed(municipality),
            "logged_in": voucher is not None,
            "mode": mode,
            "form_html": _empty_form(_first_form_class(mode), extra_step=extra_step),
            "has_password_login": mode in (Mode.VOUCHER_DOB_THEN_PASSWORD, Mode.VOUCHER_CODE),
        },
    )


def _point_at(form: forms.Form, *, error_id: str) -> None:
    """After a refused attempt, focus goes back to the first field, which is described by
    the message (read out with it) as well as by its own help text."""
    name = next(iter(form.fields))
    attrs = form.fields[name].widget.attrs
    attrs["autofocus"] = True
    described = [error_id]
    if form.fields[name].help_text:
        described.append(f"id_{name}_helptext")
    attrs["aria-describedby"] = " ".join(described)


def _login_page(
    request: HttpRequest,
    *,
    template: str,
    form: forms.Form,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    if error:
        _point_at(form, error_id="login-error")
    elif form.is_bound and form.errors:
        # Focus on the first box that is wrong, read out with its own message; the summary
        # above the form is announced.
        error = str(FIX_FIELDS)
        first = next((name for name in form.fields if name in form.errors), None)
        if first is not None:
            form.fields[first].widget.attrs["autofocus"] = True
    municipality = municipality_of(request)
    response = page(
        request,
        template,
        {
            "form": form,
            "form_html": _form_html(form, pointed=bool(error)),
            "login_error": error,
            "mode": municipality.login_mode,
            "closed": _closed(municipality),
            "has_password_login": municipality.login_mode
            in (Mode.VOUCHER_DOB_THEN_PASSWORD, Mode.VOUCHER_CODE),
        },
        status=status,
    )
    # 503: logins stopped on purpose (incident mode), not a fault to log per attempt.
    return answered_on_purpose(response) if status == 503 else response


def _refused(
    request: HttpRequest,
    refused: LoginRefused,
    *,
    template: str,
    form_class: type[forms.Form],
    method: str,
    typed: dict[str, Any],
) -> HttpResponse:
    """The page for a refused attempt. It shows again the voucher number (or e-mail address)
    the visitor typed, whether or not it exists, and never the secret (birth date, code,
    password): every failure renders the same page around the visitor's own input, and a
    resident who mistyped the birth date need not type the ten digits again. The extra step
    keeps the birth date too (nothing was checked)."""
    if isinstance(refused, SiteClosed):
        return _login_page(request, template=template, form=form_class(), status=503)
    if refused.extra_step_required:
        form = _form(form_class, extra_step=True, initial=typed)
        return _login_page(request, template=template, form=form, error=str(EXTRA_STEP), status=400)
    kept = {key: typed[key] for key in IDENTIFYING if key in typed}
    if refused.throttled:
        form = _form(form_class, extra_step=throttle.under_attack_shown(), initial=kept)
        return _login_page(request, template=template, form=form, error=str(THROTTLED), status=429)
    form = _form(form_class, extra_step=throttle.under_attack_shown(), initial=kept)
    return _login_page(
        request,
        template=template,
        form=form,
        error=f"{FAILED[method]}{FAILED_NEXT}{FAILED_CALL}",
        status=400,
    )


@sensitive_post_parameters(*SENSITIVE)
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """The first (or only) login step of the municipality's mode."""
    municipality = municipality_of(request)
    mode = municipality.login_mode
    form_class = _first_form_class(mode)
    method = _method(mode)
    template = "booking/resident/login.html"
    birth_date_mode = form_class is BirthDateLoginForm
    extra_step = birth_date_mode and throttle.under_attack_shown()
    if request.method != "POST":
        status = 503 if _closed(municipality) else 200
        form = _form(form_class, extra_step=extra_step)
        return _login_page(request, template=template, form=form, status=status)
    form = _form(form_class, extra_step=extra_step, data=request.POST)
    if not form.is_valid():
        resident_login_malformed(method=method, fields=sorted(form.errors), ip=client_ip(request))
        status = 503 if _closed(municipality) else 400
        return _login_page(request, template=template, form=form, status=status)
    data = form.cleaned_data
    ip = client_ip(request)
    try:
        if method == "birth_date":
            result = resident_login_birth_date(
                voucher_number=data["voucher_number"],
                birth_date=data["birth_date"],
                name_kana=data.get("name_kana") or None,
                ip=ip,
            )
        elif method == "code":
            result = resident_login_code(
                voucher_number=data["voucher_number"], code=data["code"], ip=ip
            )
        else:
            result = resident_login_account(email=data["email"], password=data["password"], ip=ip)
    except LoginRefused as refused:
        typed = {key: data[key] for key in ("voucher_number", "birth_date", "email") if key in data}
        return _refused(
            request, refused, template=template, form_class=form_class, method=method, typed=typed
        )
    return _after_login(request, result)


@sensitive_post_parameters(*SENSITIVE)
@require_http_methods(["GET", "POST"])
def login_password(request: HttpRequest) -> HttpResponse:
    """Voucher number and password, in the modes where a password follows the first login."""
    municipality = municipality_of(request)
    if municipality.login_mode not in (Mode.VOUCHER_DOB_THEN_PASSWORD, Mode.VOUCHER_CODE):
        raise Http404
    template = "booking/resident/login_password.html"
    if request.method != "POST":
        status = 503 if _closed(municipality) else 200
        return _login_page(request, template=template, form=PasswordLoginForm(), status=status)
    form = PasswordLoginForm(request.POST)
    if not form.is_valid():
        resident_login_malformed(
            method="password", fields=sorted(form.errors), ip=client_ip(request)
        )
        status = 503 if _closed(municipality) else 400
        return _login_page(request, template=template, form=form, status=status)
    try:
        result = resident_login_password(
            voucher_number=form.cleaned_data["voucher_number"],
            password=form.cleaned_data["password"],
            ip=client_ip(request),
        )
    except LoginRefused as refused:
        return _refused(
            request,
            refused,
            template=template,
            form_class=PasswordLoginForm,
            method="password",
            typed={"voucher_number": form.cleaned_data["voucher_number"]},
        )
    return _after_login(request, result)


# --- Registration (account mode) ----------------------------------------------------------


def _account_mode(request: HttpRequest) -> Municipality:
    municipality = municipality_of(request)
    if municipality.login_mode != Mode.ACCOUNT:
        raise Http404
    return municipality


@sensitive_post_parameters(*SENSITIVE)
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Step one: the voucher and its birth date, checked like a birth-date login."""
    municipality = _account_mode(request)
    template = "booking/resident/register.html"
    extra_step = throttle.under_attack_shown()
    if request.method != "POST":
        status = 503 if _closed(municipality) else 200
        form = BirthDateLoginForm(extra_step=extra_step)
        return _login_page(request, template=template, form=form, status=status)
    form = BirthDateLoginForm(request.POST, extra_step=extra_step)
    if not form.is_valid():
        resident_login_malformed(
            method="registration",
            fields=sorted(form.errors),
            ip=client_ip(request),
            action="resident.registration_failed",
        )
        status = 503 if _closed(municipality) else 400
        return _login_page(request, template=template, form=form, status=status)
    data = form.cleaned_data
    try:
        voucher = resident_registration_check(
            voucher_number=data["voucher_number"],
            birth_date=data["birth_date"],
            name_kana=data.get("name_kana") or None,
            ip=client_ip(request),
        )
    except RegistrationRefused:
        return page(request, "booking/resident/register_exists.html", status=409)
    except LoginRefused as refused:
        typed = {key: data[key] for key in ("voucher_number", "birth_date")}
        return _refused(
            request,
            refused,
            template=template,
            form_class=BirthDateLoginForm,
            method="registration",
            typed=typed,
        )
    registration_remember(request, voucher=voucher)
    return redirect("resident:register_account")


def _apply_errors(form: forms.Form, invalid: ValidationError, renames: dict[str, str]) -> None:
    for field, errors in invalid.error_dict.items():
        for error in errors:
            form.add_error(renames.get(field, field), error)


@sensitive_post_parameters(*SENSITIVE)
@require_http_methods(["GET", "POST"])
def register_account(request: HttpRequest) -> HttpResponse:
    """Step two: the e-mail address and password of the new account."""
    municipality = _account_mode(request)
    if _closed(municipality):
        return redirect("resident:register")
    voucher = registration_voucher(request)
    if voucher is None:
        messages.warning(request, _("はじめから登録の手続きをしてください。"))
        return redirect("resident:register")
    form = AccountCreateForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "voucher_number": voucher.voucher_number}
    if request.method != "POST":
        return page(request, "booking/resident/register_account.html", context)
    if form.is_valid():
        try:
            resident_account_create(
                voucher=voucher,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                ip=client_ip(request),
            )
        except ValidationError as invalid:
            _apply_errors(form, invalid, {"password": "password1"})
        except RegistrationRefused:
            registration_forget(request)
            return page(request, "booking/resident/register_exists.html", status=409)
        else:
            resident_login(request, voucher=voucher, password_required=False)
            messages.success(request, _("アカウントを登録しました。"))
            return redirect("resident:mypage")
    return page(request, "booking/resident/register_account.html", context, status=400)


# --- The first password ------------------------------------------------------------------------


@sensitive_post_parameters(*SENSITIVE)
@require_http_methods(["GET", "POST"])
@resident_required(allow_password_pending=True)
def password_set(request: HttpRequest) -> HttpResponse:
    if not password_pending(request):
        return redirect("resident:mypage")
    voucher = request.voucher  # type: ignore[attr-defined]
    form = PasswordSetForm(request.POST or None)
    context = {"form": form, "voucher_number": voucher.voucher_number}
    if request.method != "POST":
        return page(request, "booking/resident/password_set.html", context)
    if form.is_valid():
        try:
            resident_password_set(
                voucher=voucher, password=form.cleaned_data["password1"], ip=client_ip(request)
            )
        except ValidationError as invalid:
            for error in invalid.error_list:
                form.add_error("password1", error)
        except PasswordAlreadySet:
            resident_logout(request, reason="password_already_set")
            messages.warning(
                request,
                _("パスワードは既に設定されています。設定したパスワードでログインしてください。"),
            )
            return redirect("resident:login_password")
        else:
            resident_password_done(request)
            messages.success(
                request,
                _("パスワードを設定しました。次回からは接種券番号とパスワードでログインします。"),
            )
            return redirect("resident:mypage")
    return page(request, "booking/resident/password_set.html", context, status=400)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    resident_logout(request, reason="logout")
    messages.success(request, _("ログアウトしました。"))
    return redirect("resident:top")


@require_POST
def session_continue(request: HttpRequest) -> HttpResponse:
    """The idle warning's 続ける (resident.js): the session's idle timer starts again, as a
    page would start it. 204, or 401 when the session has ended meanwhile: nothing else
    happens here (no refusal page, no page remembered for after the login); the page the
    resident opens next says what became of the session, as always."""
    voucher, _reason = resident_of(request)
    if voucher is None:
        return HttpResponse(status=401)
    resident_seen(request)
    return HttpResponse(status=204)


@require_GET
def session_left(request: HttpRequest) -> HttpResponse:
    """How long the session has left (resident.js asks before it warns of the idle timeout
    or says the session ended: another tab may have kept it alive). JSON ``{"seconds": n}``,
    0 when it has ended (an answer, not an error a browser reports); the idle timer is not
    touched."""
    return JsonResponse({"seconds": resident_session_left(request) or 0})


@require_http_methods(["GET", "HEAD"])
def line_entry(request: HttpRequest) -> HttpResponse:
    """The LINE rich menu opens this: bookings made in this session use LINE's places.

    Nothing about the resident goes to LINE; the page is ours, in LINE's browser.
    """
    mark_from_line(request)
    return redirect("resident:top")
