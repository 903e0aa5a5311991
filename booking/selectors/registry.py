from __future__ import annotations

from django.db.models import QuerySet

from booking.models import Booking, RegistryImport, Voucher


def withdrawn_vouchers_with_bookings(registry_import: RegistryImport) -> QuerySet[Voucher]:
    """Vouchers that this import withdrew but that still hold a live booking."""
    return Voucher.objects.filter(
        withdrawn_by=registry_import,
        status=Voucher.Status.WITHDRAWN,
        bookings__status__in=[Booking.Status.ACTIVE, Booking.Status.CHECKED_IN],
    ).distinct()
