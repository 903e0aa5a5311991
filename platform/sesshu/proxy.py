"""The client's address behind the load balancer.

Behind the ALB every request's REMOTE_ADDR is the balancer. Throttles keyed by IP would then
lock out a whole municipality at once, and the audit trail would record one address for
everyone. Each trusted proxy appends the address it received the request from to
X-Forwarded-For, so with N trusted proxies the client is the N-th entry from the right;
anything to the left of it was written by the client and is not trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks
from django.http import HttpRequest, HttpResponse


def forwarded_client(forwarded_for: str, trusted_proxies: int) -> str | None:
    entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()]
    if trusted_proxies <= 0 or len(entries) < trusted_proxies:
        return None
    candidate = entries[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.trusted = int(getattr(settings, "SESSHU_TRUSTED_PROXY_COUNT", 0))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.trusted:
            client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""), self.trusted)
            if client:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)


def check_trusted_proxies(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django deploy check (``manage.py check --deploy``): sesshu.W002 when served over HTTPS
    (behind the load balancer) with no proxy trusted, where every client would be the
    balancer's address."""
    if getattr(settings, "SESSHU_HTTPS", False) and not settings.SESSHU_TRUSTED_PROXY_COUNT:
        return [
            checks.Warning(
                "SESSHU_TRUSTED_PROXY_COUNT is 0: behind a load balancer every request comes"
                " from its address, and the per-address login limit locks every resident out"
                " at once.",
                hint="Set it to the number of proxies that append to X-Forwarded-For (the"
                " ALB: 1; k8s/base/kustomization.yaml).",
                id="sesshu.W002",
            )
        ]
    return []
