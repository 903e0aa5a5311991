from __future__ import annotations

from django.urls import URLPattern, path, re_path

from controlplane import registry_views, views

app_name = "controlplane"

CODE = r"(?P<code>[0-9]{6})"

urlpatterns: list[URLPattern] = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("", views.municipality_list, name="municipality_list"),
    path("stats/refresh/", views.stats_refresh, name="stats_refresh"),
    path("trail/", views.trail, name="trail"),
    path("municipalities/new/", views.municipality_create, name="municipality_create"),
    re_path(rf"^municipalities/{CODE}/$", views.municipality_detail, name="municipality_detail"),
    re_path(
        rf"^municipalities/{CODE}/suspend/$",
        views.municipality_suspend_view,
        name="municipality_suspend",
    ),
    re_path(
        rf"^municipalities/{CODE}/resume/$",
        views.municipality_resume_view,
        name="municipality_resume",
    ),
    re_path(
        rf"^municipalities/{CODE}/admin-invitation/$",
        views.municipality_admin_reinvite_view,
        name="municipality_admin_reinvite",
    ),
    re_path(
        rf"^municipalities/{CODE}/admin-recovery/$",
        views.municipality_admin_recover_view,
        name="municipality_admin_recover",
    ),
    re_path(
        rf"^municipalities/{CODE}/waiting-room/$",
        views.municipality_waiting_room_view,
        name="municipality_waiting_room",
    ),
    re_path(
        rf"^municipalities/{CODE}/registry/$",
        registry_views.registry_imports,
        name="registry_imports",
    ),
    re_path(
        rf"^municipalities/{CODE}/registry/(?P<pk>[0-9]+)/$",
        registry_views.registry_import_detail,
        name="registry_import",
    ),
    re_path(
        rf"^municipalities/{CODE}/registry/(?P<pk>[0-9]+)/decide/$",
        registry_views.registry_import_decide,
        name="registry_import_decide",
    ),
    re_path(
        rf"^municipalities/{CODE}/decommission/$",
        views.municipality_decommission_view,
        name="municipality_decommission",
    ),
]
