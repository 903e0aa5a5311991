from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("console/", include("booking.console.urls")),
    # LINE account linking for my page's contact details (the notifications' views).
    path("contact/line/", include("booking.notifications.urls")),
    path("", include("booking.resident.urls")),
]
