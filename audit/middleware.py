"""Every refused permission check is in the audit trail (ASVS 16.3.2), wherever it happens.

Views that refuse on their own call ``audit.record`` with a precise action; this catches the
rest: a ``PermissionDenied`` raised anywhere, and CSRF failures (see ``csrf_failure``).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.loader import render_to_string

from audit import record
from audit.chain import Actor


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def record_refusal(request: HttpRequest, *, reason: str) -> None:
    public = getattr(request, "tenant", None) is None
    record(
        action="access.refused",
        actor=Actor.from_user(getattr(request, "user", None), public=public),
        ip=client_ip(request),
        # The path is safe to keep: nothing personal is ever put in a URL (ASVS 14.2.1).
        details={"path": request.path[:200], "method": request.method or "", "reason": reason},
    )


class RefusalAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, PermissionDenied):
            record_refusal(request, reason="permission_denied")


def site_path(path: str) -> bool:
    """Whether ``path`` is one of this site's own: it starts with one slash ("//host" and
    "/\\host" are other sites to a browser)."""
    return path.startswith("/") and not path.startswith(("//", "/\\"))


def referer_path(request: HttpRequest) -> str:
    """The page of this site the request came from (path and query), "" when it came from
    elsewhere or says nothing: a way back that never leads off the site."""
    came_from = urlsplit(request.META.get("HTTP_REFERER", ""))
    if came_from.netloc != request.get_host() or not site_path(came_from.path):
        return ""
    return came_from.path + (f"?{came_from.query}" if came_from.query else "")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page too old (or after signing in again in another tab): said to
    have done nothing, in the municipality's name, with the way back to the page it came
    from (a path on this site only)."""
    record_refusal(request, reason="csrf")
    tenant = getattr(request, "tenant", None)  # none on the control plane
    body = render_to_string(
        "audit/csrf_failure.html",
        {
            "site_name": getattr(tenant, "name", ""),
            "back": referer_path(request) or "/",
        },
        request=request,
    )
    return HttpResponseForbidden(body)
