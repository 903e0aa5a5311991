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


def registry_imports_at_work() -> QuerySet[RegistryImport]:
    """The import parsing or applying (one at most: the ``one_registry_import_at_work``
    constraint), whether its run is alive or not."""
    return RegistryImport.objects.filter(
        status__in=[RegistryImport.Status.PARSING, RegistryImport.Status.APPLYING]
    )
