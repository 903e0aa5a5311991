from __future__ import annotations

from django.urls import path

from booking.console.incident import views

app_name = "incident"

urlpatterns = [
    path("", views.index, name="index"),
    path("incident/start/", views.start, name="start"),
    path("incident/end/", views.end, name="end"),
    path("incident/codes/", views.codes_reissue, name="codes_reissue"),
    path("letters/", views.letters, name="letters"),
    path("networks/", views.networks, name="networks"),
]
