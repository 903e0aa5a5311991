from __future__ import annotations

from django.urls import path

from booking.console.trail import views

app_name = "trail"

urlpatterns = [
    path("", views.index, name="index"),
    path("report/", views.report, name="report"),
    path("export/", views.export, name="export"),
    path("verify/", views.verify, name="verify"),
]
