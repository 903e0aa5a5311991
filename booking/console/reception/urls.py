from __future__ import annotations

from django.urls import path

from booking.console.reception import views

app_name = "reception"

urlpatterns = [
    path("", views.lookup, name="lookup"),
    path("bookings/<int:booking_id>/", views.booking, name="booking"),
    path("bookings/<int:booking_id>/check-in/", views.check_in, name="check_in"),
    path("bookings/<int:booking_id>/vaccination/", views.vaccinate, name="vaccinate"),
    path("bookings/<int:booking_id>/not-given/", views.not_given, name="not_given"),
    path("bookings/<int:booking_id>/deferral/undo/", views.undo_deferral, name="undo_deferral"),
    path(
        "bookings/<int:booking_id>/vaccination/correct/",
        views.correct_vaccination,
        name="correct_vaccination",
    ),
    path(
        "bookings/<int:booking_id>/vaccination/void/",
        views.void_vaccination,
        name="void_vaccination",
    ),
    path("no-shows/", views.no_shows, name="no_shows"),
    path("walk-in/", views.walk_in, name="walk_in"),
    path("today/", views.today, name="today"),
    path("roster/", views.roster, name="roster"),
    path("ahead/", views.ahead, name="ahead"),
    path("staff-venues/", views.staff_venues, name="staff_venues"),
]
