"""Resolve the host to the control plane or to one municipality, for the whole request.

``platform.<base>`` is the control plane (public schema, public role). Any other
``<sub>.<base>`` must be a registered domain of a municipality that is not decommissioned
(remembered for a few seconds: tenants.hosts); the connection then switches schema *and*
database role to it. The lookup itself runs as the public role. The connection goes back to
public at the end, whatever happened, so nothing
of this municipality follows the connection into the next request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string

from sesshu.logs import answered_on_purpose
from tenants.db import tenant_connection
from tenants.hosts import municipality_for_host
from tenants.models import Municipality


class TenantHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_connection().set_schema_to_public()
        host = request.get_host().split(":", 1)[0].lower().rstrip(".")
        try:
            if host == settings.SESSHU_PLATFORM_HOST:
                request.tenant = None  # type: ignore[attr-defined]
                request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
            else:
                tenant = self._municipality_for(host)
                if tenant.status == Municipality.Status.SUSPENDED:
                    return self._suspended(request, tenant)
                tenant_connection().set_tenant(tenant)
                request.tenant = tenant  # type: ignore[attr-defined]
                request.urlconf = settings.ROOT_URLCONF  # type: ignore[attr-defined]
            return self.get_response(request)
        finally:
            tenant_connection().set_schema_to_public()

    @staticmethod
    def _suspended(request: HttpRequest, tenant: Municipality) -> HttpResponse:
        # The platform suspended this municipality: nothing of it is served, not even the
        # console, until the platform resumes it.
        body = render_to_string(
            "tenants/suspended.html",
            # Staff are told what it is and whom to ask, not to phone their own call centre.
            {"site_name": tenant.name, "console": request.path.startswith("/console/")},
            request=request,
        )
        response = HttpResponse(body, status=503)
        response["Retry-After"] = "3600"
        return answered_on_purpose(response)

    @staticmethod
    def _municipality_for(host: str) -> Municipality:
        municipality = municipality_for_host(host)
        if municipality is None:
            raise Http404("unknown host")
        return municipality
