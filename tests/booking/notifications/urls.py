"""The tenant URLs with the LINE linking views included, as booking/urls.py is asked to."""

from __future__ import annotations

from django.urls import include, path

from sesshu.urls_tenant import urlpatterns as tenant_urlpatterns

urlpatterns = [
    path("contact/line/", include("booking.notifications.urls")),
    *tenant_urlpatterns,
]
