"""The booking numbers the control plane shows per municipality (counts only, never rows).

Registered with ``tenants.tasks.stat_counter``; ``BookingConfig.ready()`` imports this module
so that both the worker (which counts) and the web process (which shows the labels) know it.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from booking.models import Booking, RegistryImport, StaffMember, Voucher
from tenants.tasks import stat_counter


@stat_counter("vouchers_active", _("有効な接種券"))
def count_active_vouchers() -> int:
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE).count()


@stat_counter("bookings_live", _("有効な予約"))
def count_live_bookings() -> int:
    return Booking.objects.filter(status__in=Booking.LIVE_STATUSES).count()


# What needs the vendor's attention, counted with the rest (the list shows counts only).
IMPORTS_WATCHED_DAYS = 14


@stat_counter(
    "imports_attention", _("失敗・中断した名簿の取込（14日以内）"), attention=lambda n: n > 0
)
def count_imports_needing_attention() -> int:
    since = timezone.now() - timedelta(days=IMPORTS_WATCHED_DAYS)
    recent = RegistryImport.objects.filter(created_at__gte=since).exclude(
        status__in=(RegistryImport.Status.DONE, RegistryImport.Status.CANCELLED)
    )
    return sum(
        1
        for registry_import in recent
        if registry_import.status == RegistryImport.Status.FAILED or registry_import.stalled
    )


@stat_counter("admins_ready", _("ログインできる管理者"), attention=lambda n: n == 0)
def count_admins_ready() -> int:
    return StaffMember.objects.filter(role=StaffMember.Role.ADMIN, user__is_active=True).count()
