from __future__ import annotations

from django.urls import path

from booking.console.planning import read_views, rules_views, slot_views, venue_views, vrs_views

app_name = "planning"

urlpatterns = [
    path("", read_views.index, name="index"),
    path("venues/", venue_views.venue_list, name="venues"),
    path("venues/new/", venue_views.venue_new, name="venue_new"),
    path("venues/<int:venue_id>/edit/", venue_views.venue_edit, name="venue_edit"),
    path("venues/<int:venue_id>/close/", venue_views.venue_close_view, name="venue_close"),
    path("venues/<int:venue_id>/reopen/", venue_views.venue_reopen_view, name="venue_reopen"),
    path("slots/", slot_views.slot_list, name="slots"),
    path("slots/generate/", slot_views.slot_generate, name="slot_generate"),
    path("slots/upload/", slot_views.slot_upload, name="slot_upload"),
    path("slots/upload/template.csv", slot_views.slot_upload_template, name="slot_template"),
    path("slots/<int:slot_id>/close/", slot_views.slot_close_view, name="slot_close"),
    path("slots/<int:slot_id>/reopen/", slot_views.slot_reopen_view, name="slot_reopen"),
    path("slots/<int:slot_id>/capacity/", slot_views.slot_capacity_view, name="slot_capacity"),
    path("slots/<int:slot_id>/cancel/", slot_views.slot_cancel_view, name="slot_cancel"),
    path(
        "slots/<int:slot_id>/phoned/<int:booking_id>/",
        slot_views.slot_phoned_view,
        name="slot_phoned",
    ),
    path("days/<str:day>/cancel/", slot_views.day_cancel_view, name="day_cancel"),
    path("rules/", rules_views.rules, name="rules"),
    path("rules/policy/", rules_views.policy_edit, name="policy_edit"),
    path("rules/phases/new/", rules_views.phase_new, name="phase_new"),
    path("rules/phases/<int:phase_id>/edit/", rules_views.phase_edit, name="phase_edit"),
    path("rules/phases/<int:phase_id>/delete/", rules_views.phase_delete, name="phase_delete"),
    path("rules/vaccines/new/", rules_views.vaccine_new, name="vaccine_new"),
    path("rules/vaccines/<int:product_id>/edit/", rules_views.vaccine_edit, name="vaccine_edit"),
    path("free/", read_views.free_slots, name="free_slots"),
    path("free.csv", read_views.free_slots_csv, name="free_slots_csv"),
    path("reports/", read_views.reports, name="reports"),
    path("reports/<slug:key>.csv", read_views.report_csv, name="report_csv"),
    path("vrs/", vrs_views.vrs_export, name="vrs"),
]
