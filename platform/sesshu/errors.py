"""The error pages (400, 403, 404, 405, 500, and 503 when the shared cache is unreachable), in
the visitor's language (Django's own are English).

Each names the municipality (held by the request since the tenant middleware: no query); the
server error also names the request by the id every log line of it carries (sesshu.logs), so
that the call centre or the vendor can find what happened. They need nothing that may be
what failed: no database, no session, no cache, and no context processor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from sesshu.logs import answered_on_purpose, host_kind
from sesshu.outages import CACHE_DOWN, cache_down

# Each status's heading and message.
_TEXTS = {
    400: (
        _("リクエストを処理できませんでした"),
        _(
            "送られた内容を処理できませんでした。前の画面に戻り、ページを再読み込みしてから、"
            "もう一度お試しください。"
        ),
    ),
    403: (
        _("このページは表示できません"),
        _(
            "このページを表示する権限がありません。ログインし直すか、トップページからお進みください。"
        ),
    ),
    404: (
        _("ページが見つかりません"),
        _(
            "お探しのページは見つかりませんでした。アドレスが正しいか確認してください。"
            "ブックマークや古いメールのリンクから開いた場合は、トップページからお進みください。"
        ),
    ),
    405: (
        _("この操作はできません"),
        _(
            "このアドレスは、画面のボタンから送るためのものです。"
            "前の画面に戻るか、トップページからお進みください。"
        ),
    ),
    503: (
        _("ただいまご利用いただけません"),
        _(
            "一時的に処理できない状態のため、表示できませんでした。入力中の内容は保存されていません。"
            "しばらくしてから、もう一度お試しください。"
        ),
    ),
    500: (
        _("ただいまご利用いただけません"),
        _(
            "システムで問題が起きたため、表示できませんでした。入力中の内容は保存されていません。"
            "しばらくしてから、もう一度お試しください。"
        ),
    ),
}


def _page(request: HttpRequest, status: int) -> HttpResponse:
    tenant = getattr(request, "tenant", None)
    heading, message = _TEXTS[status]
    failed = status >= 500
    context = {
        "site_name": getattr(tenant, "name", ""),
        "heading": heading,
        "message": message,
        # The request as every log line of it names it, for whoever helps them.
        "request_id": getattr(request, "request_id", "") if failed else "",
        # The call centre is for residents; staff and operators have their own ways.
        "call_centre": failed and host_kind(request) == "resident",
    }
    return HttpResponse(render_to_string("errors/page.html", context), status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    failure = sys.exc_info()[1]
    if isinstance(failure, CACHE_DOWN):
        # Redis unreachable, for what may not go on without it (a login's throttle): the
        # outage is logged once a minute (sesshu.outages), not as an error per page.
        cache_down("a page that cannot go on without it (answered 503)", failure)
        response = _page(request, 503)
        response["Retry-After"] = "30"
        return answered_on_purpose(response)
    return _page(request, 500)


class MethodNotAllowedPageMiddleware:
    """Django answers a method a view does not take with an empty 405: a blank page for a
    resident who opens a form's address from the history or a bookmark (a GET of /logout/).
    This gives it a page like the other errors, in the visitor's language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.streaming or response.content:
            return response
        page = _page(request, 405)
        # What the middleware inside this one set on the empty answer (the security
        # headers: CSP, frame and cache rules; Allow; a cookie) holds for the page too.
        for header, value in response.headers.items():
            if header.lower() not in ("content-type", "content-length"):
                page.headers.setdefault(header, value)
        page.cookies = response.cookies
        return page
