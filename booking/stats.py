"""The booking numbers the control plane shows per municipality (counts only, never rows).

Registered with ``tenants.tasks.stat_counter``; ``BookingConfig.ready()`` imports this module
so that both the worker (which counts) and the web process (which shows the labels) know it.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from booking.models import Booking, Voucher
from tenants.tasks import stat_counter


@stat_counter("vouchers_active", _("有効な接種券"))
def count_active_vouchers() -> int:
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE).count()


@stat_counter("bookings_live", _("有効な予約"))
def count_live_bookings() -> int:
    return Booking.objects.filter(status__in=Booking.LIVE_STATUSES).count()
