"""Venues: create, edit, close (no new bookings) and reopen; every change audited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import Booking, Slot, VaccineProduct, Venue
from booking.services.planning.base import JAPAN, PlanningRefused, invalidate_on_commit


@dataclass(frozen=True)
class VenueDetails:
    name: str
    area: str
    address: str
    access_notes: str = ""
    accessibility: str = ""
    map_url: str = ""
    products: tuple[VaccineProduct, ...] = ()


_VENUE_FIELDS = ("name", "area", "address", "access_notes", "accessibility", "map_url")


def _venue_days(venue: Venue) -> list[date]:
    """Days with slots of ``venue`` from today on: the residents' cached availability to drop."""
    today = timezone.localdate(timezone=JAPAN)
    start = datetime.combine(today, time.min, tzinfo=JAPAN)
    return list(
        Slot.objects.filter(venue=venue, starts_at__gte=start)
        .annotate(day=TruncDate("starts_at", tzinfo=JAPAN))
        .order_by("day")
        .values_list("day", flat=True)
        .distinct()
    )


def venue_create(*, details: VenueDetails, actor: Actor, ip: str | None = None) -> Venue:
    with transaction.atomic():
        venue = Venue.objects.create(**{name: getattr(details, name) for name in _VENUE_FIELDS})
        venue.products.set(details.products)
        record(
            action="venue.created",
            actor=actor,
            target=venue,
            ip=ip,
            details={
                # What residents read of it, as it was made (the trail names a venue by its
                # name now, which may change).
                **{f"venue_{name}": getattr(details, name) for name in _VENUE_FIELDS},
                "products": sorted(p.pk for p in details.products),
            },
        )
    return venue


def venue_version(venue: Venue) -> str:
    """A short fingerprint of what the edit form shows of ``venue``: a form carries it, and
    a save from a form opened before another change is refused."""
    digest = hashlib.sha256()
    for name in _VENUE_FIELDS:
        digest.update(f"{name}={getattr(venue, name)}\n".encode())
    products = sorted(venue.products.values_list("pk", flat=True))
    digest.update(f"products={products}".encode())
    return digest.hexdigest()[:16]


def venue_update(
    *,
    venue: Venue,
    details: VenueDetails,
    actor: Actor,
    ip: str | None = None,
    seen_version: str = "",
) -> Venue:
    """Change a venue's description and vaccines. A vaccine the venue still has slots of
    from now on (not cancelled) is not taken off it (PlanningRefused): the venue would say
    one vaccine while residents book another there. ``seen_version``: ``venue_version`` as
    the form showed it; another change in between is refused, never written back over."""
    with transaction.atomic():
        current = Venue.objects.select_for_update().get(pk=venue.pk)
        if seen_version and seen_version != venue_version(current):
            raise PlanningRefused(
                "changed_meanwhile",
                _(
                    "この画面を開いた後に、ほかの職員がこの会場の情報を変更しました。"
                    "変更していません。会場の一覧から開き直して、いまの内容を確かめてください。"
                ),
            )
        _check_products_kept(current, details.products)
        changed = [
            name for name in _VENUE_FIELDS if getattr(current, name) != getattr(details, name)
        ]
        # Each change as "before → after": an address that sent residents astray is traced.
        values = {
            f"venue_{name}": f"{getattr(current, name)} → {getattr(details, name)}"
            for name in changed
        }
        for name in changed:
            setattr(current, name, getattr(details, name))
        if changed:
            current.save(update_fields=changed)
        before = set(current.products.values_list("pk", flat=True))
        after = {p.pk for p in details.products}
        if before != after:
            current.products.set(details.products)
            changed.append("products")
        if changed:
            record(
                action="venue.updated",
                actor=actor,
                target=current,
                ip=ip,
                details={
                    "changed": changed,
                    **values,
                    "products": sorted(after),
                    **({"previous_products": sorted(before)} if before != after else {}),
                },
            )
            invalidate_on_commit(_venue_days(current))
    return current


def _check_products_kept(venue: Venue, products: tuple[VaccineProduct, ...]) -> None:
    """Refuse vaccines the venue still has slots of from now on (no vaccine chosen: any)."""
    if not products:
        return
    left = (
        Slot.objects.filter(venue=venue, ends_at__gt=timezone.now())
        .exclude(status=Slot.Status.CANCELLED)
        .exclude(product__in=products)
    )
    counts = list(
        left.values("product__name").annotate(slots=Count("id")).order_by("product__name")
    )
    if not counts:
        return
    bookings = Booking.objects.filter(slot__in=left, status__in=Booking.LIVE_STATUSES).count()
    raise PlanningRefused(
        "products_in_use",
        _(
            "この会場には、これからの%(what)sの予約枠があり（予約%(bookings)d件）、"
            "扱うワクチンから外せません。外すときは、先にその予約枠を中止してください。"
        )
        % {
            "what": "、".join(
                _("%(name)s（%(slots)d枠）") % {"name": row["product__name"], "slots": row["slots"]}
                for row in counts
            ),
            "bookings": bookings,
        },
    )


def _venue_set_open(*, venue: Venue, is_open: bool, actor: Actor, ip: str | None) -> Venue:
    with transaction.atomic():
        updated = Venue.objects.filter(pk=venue.pk, is_open=not is_open).update(is_open=is_open)
        current = Venue.objects.get(pk=venue.pk)
        if updated:
            live = Booking.objects.filter(
                slot__venue=current,
                slot__starts_at__gte=timezone.now(),
                status__in=Booking.LIVE_STATUSES,
            ).count()
            record(
                action="venue.reopened" if is_open else "venue.closed",
                actor=actor,
                target=current,
                ip=ip,
                details={"live_bookings_kept": live},
            )
            invalidate_on_commit(_venue_days(current))
    return current


def venue_close(*, venue: Venue, actor: Actor, ip: str | None = None) -> Venue:
    """Stop new bookings at the venue (``is_open=False``). Bookings already made are kept:
    cancelling them is a per-slot decision (``slot_cancel``)."""
    return _venue_set_open(venue=venue, is_open=False, actor=actor, ip=ip)


def venue_reopen(*, venue: Venue, actor: Actor, ip: str | None = None) -> Venue:
    return _venue_set_open(venue=venue, is_open=True, actor=actor, ip=ip)
