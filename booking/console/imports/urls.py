from __future__ import annotations

from django.urls import path

from booking.console.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.imports, name="list"),
    path("mapping/", views.mapping, name="mapping"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/errors/", views.error_file, name="error_file"),
    path("<int:pk>/codes/", views.codes_file, name="codes_file"),
]
