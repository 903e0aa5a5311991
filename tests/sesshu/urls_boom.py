"""A resident-facing URL that fails while holding personal data (Sentry test only)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def failing_booking(request: HttpRequest) -> HttpResponse:
    voucher_number = request.POST["voucher_number"]
    name = request.POST["name"]
    birth_date = request.POST["birth_date"]
    phone = request.POST["phone"]
    raise ValueError(f"no slot for {voucher_number} {name} {birth_date} {phone}")


urlpatterns = [path("book", failing_booking)]
