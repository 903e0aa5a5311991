from __future__ import annotations

from django.urls import path

from booking.console.notices import views

app_name = "notices"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:notification_id>/resend/", views.resend, name="resend"),
    path("pause/", views.pause, name="pause"),
    path("settings/", views.settings_edit, name="settings"),
    path("templates/", views.templates, name="templates"),
    path(
        "templates/<str:kind>/<str:channel>/<str:language>/",
        views.template_edit,
        name="template",
    ),
    path("line/", views.line, name="line"),
]
