"""The residents' site. Nothing personal is ever in a path or query: dates, slot ids,
booking numbers and filters only (ASVS 14.2.1)."""

from __future__ import annotations

from django.urls import path

from booking.resident.views import booking, entry, mypage

app_name = "resident"

urlpatterns = [
    path("", entry.top, name="top"),
    path("line/", entry.line_entry, name="line"),
    path("login/", entry.login, name="login"),
    path("login/password/", entry.login_password, name="login_password"),
    path("register/", entry.register, name="register"),
    path("register/account/", entry.register_account, name="register_account"),
    path("password/", entry.password_set, name="password_set"),
    path("logout/", entry.logout, name="logout"),
    path("session/continue/", entry.session_continue, name="session_continue"),
    path("session/left/", entry.session_left, name="session_left"),
    path("mypage/", mypage.mypage, name="mypage"),
    path("contact/", mypage.contact, name="contact"),
    path("book/", booking.choose_date, name="book_date"),
    # Before the day's pattern, which "venues" would match.
    path("book/venues/", booking.choose_venue, name="book_venues"),
    path("book/<str:day>/", booking.choose_slot, name="book_slots"),
    path("book/slot/<int:slot_id>/", booking.confirm, name="book_confirm"),
    # Booking the series together: the next dose's date, slot and the confirmation of both.
    path("book/slot/<int:first_slot_id>/second/", booking.choose_date, name="book_second_date"),
    path(
        "book/slot/<int:first_slot_id>/second/venues/",
        booking.choose_venue,
        name="book_second_venues",
    ),
    path(
        "book/slot/<int:first_slot_id>/second/<str:day>/",
        booking.choose_slot,
        name="book_second_slots",
    ),
    path(
        "book/slot/<int:first_slot_id>/second/slot/<int:slot_id>/",
        booking.confirm,
        name="book_second_confirm",
    ),
    path("bookings/<str:booking_number>/", booking.booking_detail, name="booking_detail"),
    path("bookings/<str:booking_number>/done/", booking.booking_done, name="booking_done"),
    path("bookings/<str:booking_number>/print/", booking.booking_print, name="booking_print"),
    path(
        "bookings/<str:booking_number>/cancel/",
        booking.booking_cancel_view,
        name="booking_cancel",
    ),
    path("bookings/<str:booking_number>/change/", booking.choose_date, name="change_date"),
    path(
        "bookings/<str:booking_number>/change/venues/",
        booking.choose_venue,
        name="change_venues",
    ),
    path(
        "bookings/<str:booking_number>/change/slot/<int:slot_id>/",
        booking.confirm,
        name="change_confirm",
    ),
    path(
        "bookings/<str:booking_number>/change/<str:day>/",
        booking.choose_slot,
        name="change_slots",
    ),
]
