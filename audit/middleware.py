"""Every refused permission check is in the audit trail (ASVS 16.3.2), wherever it happens.

Views that refuse on their own call ``audit.record`` with a precise action; this catches the
rest: a ``PermissionDenied`` raised anywhere, and CSRF failures (see ``csrf_failure``).
"""

from __future__ import annotations

from collections.abc import Callable

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


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    record_refusal(request, reason="csrf")
    body = render_to_string("audit/csrf_failure.html", request=request)
    return HttpResponseForbidden(body)
