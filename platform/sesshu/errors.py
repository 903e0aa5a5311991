"""The error pages (400, 403, 404, 405, 500), in the visitor's language (Django's own are English).

Each names the municipality (held by the request since the tenant middleware: no query); the
server error also names the request by the id every log line of it carries (sesshu.logs), so
that the call centre or the vendor can find what happened. They need nothing that may be
what failed: no database, no session, no cache, and no context processor.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from sesshu.logs import host_kind


def _page(
    request: HttpRequest, template: str, status: int, *, request_id: str = ""
) -> HttpResponse:
    tenant = getattr(request, "tenant", None)
    context = {
        "site_name": getattr(tenant, "name", ""),
        "request_id": request_id,
        # The call centre is for residents; staff and operators have their own ways.
        "residents": host_kind(request) == "resident",
    }
    return HttpResponse(render_to_string(template, context), status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return _page(request, "500.html", 500, request_id=getattr(request, "request_id", ""))


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
        page = _page(request, "405.html", 405)
        if "Allow" in response:
            page["Allow"] = response["Allow"]
        return page
