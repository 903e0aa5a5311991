"""Nothing personal in these paths: internal voucher and booking ids only (ASVS 14.2.1)."""

from __future__ import annotations

from django.urls import path

from booking.console.callcentre import views

app_name = "callcentre"

urlpatterns = [
    path("", views.search, name="search"),
    path("to-phone/", views.to_phone, name="to_phone"),
    path(
        "to-phone/reminders/<int:booking_id>/phoned/",
        views.reminder_phoned_view,
        name="reminder_phoned",
    ),
    path("residents/<int:voucher_id>/", views.resident, name="resident"),
    path("residents/<int:voucher_id>/reveal/", views.reveal, name="reveal"),
    path("residents/<int:voucher_id>/identity/", views.identity, name="identity"),
    path("residents/<int:voucher_id>/book/", views.book, name="book"),
    path(
        "residents/<int:voucher_id>/bookings/<int:booking_id>/",
        views.booking_detail,
        name="booking",
    ),
    path(
        "residents/<int:voucher_id>/bookings/<int:booking_id>/change/",
        views.change,
        name="change",
    ),
    path(
        "residents/<int:voucher_id>/bookings/<int:booking_id>/cancel/",
        views.cancel,
        name="cancel",
    ),
    path(
        "residents/<int:voucher_id>/password-reset/",
        views.password_reset,
        name="password_reset",
    ),
    path("residents/<int:voucher_id>/web-login/", views.web_login, name="web_login"),
    path("residents/<int:voucher_id>/lock-lift/", views.lock_lift, name="lock_lift"),
]
