from __future__ import annotations

from django.urls import include, path

from booking.console import setup, views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("setup/<str:token>/", setup.setup, name="setup"),
    path("staff/invite/", views.invite, name="invite"),
    path("staff/<int:staff_id>/end-sessions/", views.end_sessions, name="end_sessions"),
    path("staff/<int:staff_id>/deactivate/", views.deactivate, name="deactivate"),
    path("staff/<int:staff_id>/reset/", views.reset, name="staff_reset"),
    path("staff/<int:staff_id>/role/", views.role, name="staff_role"),
    path(
        "staff/invitations/<int:invitation_id>/withdraw/",
        views.withdraw_invitation,
        name="withdraw_invitation",
    ),
    path("reception/", include("booking.console.reception.urls")),
    path("imports/", include("booking.console.imports.urls")),
    path("planning/", include("booking.console.planning.urls")),
    path("callcentre/", include("booking.console.callcentre.urls")),
    path("security/", include("booking.console.incident.urls")),
    path("trail/", include("booking.console.trail.urls")),
    path("notifications/", include("booking.console.notices.urls")),
]
