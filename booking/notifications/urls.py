"""LINE account linking for my page. Include under the residents' site, e.g.
``path("contact/line/", include("booking.notifications.urls"))`` in ``booking/urls.py``
(before the residents' catch-all include)."""

from __future__ import annotations

from django.urls import path

from booking.notifications import views

app_name = "notifications"

urlpatterns = [
    path("link/", views.line_link, name="line_link"),
    path("callback/", views.line_callback, name="line_callback"),
    path("unlink/", views.line_unlink, name="line_unlink"),
]
