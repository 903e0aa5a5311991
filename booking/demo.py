"""Demo data for one municipality: vaccines, venues in several areas, two weeks of slots,
age phases and a policy — what an admin sets up before an opening (UX.md "The admin's path");
and today's slots at the first venue, with a few residents booked there
(``demo_venue_day``), for the venue's desk to be tried (UX.md "The venue's path").

``manage.py demo_setup`` calls ``demo_data_create`` inside the demo municipality. Running it
again adds what is missing and changes nothing else (slots are unique per venue, vaccine and
time). Vouchers are not made here: they come from a registry import (scripts/gen_registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import record
from audit.chain import Actor
from booking.models import (
    AgePhase,
    Booking,
    BookingPolicy,
    Channel,
    Slot,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_new
from tenants.db import current_municipality

JAPAN = ZoneInfo("Asia/Tokyo")
SLOT_MINUTES = 30
FIRST_START = time(9, 0)
LAST_START = time(16, 30)  # the last slot ends at 17:00
DEMO_CALL_CENTRE_HOURS = "毎日 9:00〜18:00（土日祝も受付）"
DEMO_CALL_CENTRE_PHONE = "0120-000-000"


@dataclass(frozen=True)
class _Product:
    code: str
    name: str
    maker: str
    interval_days: int


PRODUCTS = (
    _Product("pfizer", "ファイザー社ワクチン", "ファイザー株式会社", 19),
    _Product("moderna", "モデルナ社ワクチン", "モデルナ・ジャパン株式会社", 28),
)


@dataclass(frozen=True)
class _Venue:
    name: str
    area: str
    street: str
    access_notes: str
    accessibility: str
    products: tuple[str, ...]
    # Places per slot for the web, LINE and the call centre.
    capacity: tuple[int, int, int]


VENUES = (
    _Venue(
        "市民総合体育館（集団接種会場）",
        "中央地区",
        "中央町1-1-1",
        "市役所前駅から徒歩5分。駐車場あり（150台）。",
        "車いす貸出あり。会場内はすべて段差なし。",
        ("pfizer", "moderna"),
        (12, 4, 4),
    ),
    _Venue(
        "北部地域センター",
        "北地区",
        "北町3-12-5",
        "北町駅からバスで10分、「地域センター前」下車すぐ。",
        "エレベーターあり。多目的トイレあり。",
        ("pfizer",),
        (6, 2, 2),
    ),
    _Venue(
        "みなみ内科クリニック",
        "南地区",
        "南町2-4-8 南町ビル2階",
        "南町駅南口から徒歩2分。駐車場はありません。",
        "エレベーターあり。",
        ("pfizer",),
        (4, 1, 2),
    ),
    _Venue(
        "東公民館",
        "東地区",
        "東町5-2-1",
        "東町駅から徒歩8分。駐車場あり（20台）。",
        "入口にスロープあり。",
        ("moderna",),
        (6, 2, 2),
    ),
    _Venue(
        "西部市民病院",
        "西地区",
        "西町4-1-10",
        "西町駅からバスで5分、「市民病院」下車。",
        "車いす貸出あり。エレベーターあり。",
        ("pfizer", "moderna"),
        (8, 2, 3),
    ),
    _Venue(
        "中央こどもクリニック",
        "中央地区",
        "本町2-7-3",
        "市役所前駅から徒歩3分。",
        "ベビーカーのまま入れます。",
        ("pfizer",),
        (4, 1, 1),
    ),
    _Venue(
        "北町ファミリー診療所",
        "北地区",
        "北町1-9-2",
        "北町駅東口から徒歩4分。",
        "段差なし。",
        ("moderna",),
        (4, 1, 1),
    ),
    _Venue(
        "南部コミュニティホール",
        "南地区",
        "南町6-3-1",
        "南町駅からバスで12分、「コミュニティホール」下車。",
        "駐車場に障害者用区画あり。",
        ("pfizer", "moderna"),
        (8, 2, 2),
    ),
)


@dataclass(frozen=True)
class DemoSummary:
    products: int
    venues: int
    slots: int
    age_phases: int


def _slot_starts(day: date) -> list[datetime]:
    starts = []
    moment = datetime.combine(day, FIRST_START, tzinfo=JAPAN)
    last = datetime.combine(day, LAST_START, tzinfo=JAPAN)
    while moment <= last:
        starts.append(moment)
        moment += timedelta(minutes=SLOT_MINUTES)
    return starts


def _venue_template(index: int) -> _Venue:
    template = VENUES[index % len(VENUES)]
    if index < len(VENUES):
        return template
    # More venues than templates: the same kinds of place, numbered.
    number = index // len(VENUES) + 1
    return _Venue(
        f"{template.name} 第{number}会場",
        template.area,
        template.street,
        template.access_notes,
        template.accessibility,
        template.products,
        template.capacity,
    )


def demo_data_create(*, days: int = 14, venues: int = 6) -> DemoSummary:
    """Create (or complete) the demo data of the current municipality. Idempotent."""
    if days < 1 or venues < 1:
        raise ValueError("days and venues are at least 1")
    municipality = current_municipality()
    today = timezone.localdate(timezone=JAPAN)
    with transaction.atomic():
        products: dict[str, VaccineProduct] = {}
        for spec in PRODUCTS:
            products[spec.code], _ = VaccineProduct.objects.get_or_create(
                code=spec.code,
                defaults={
                    "name": spec.name,
                    "maker": spec.maker,
                    "interval_days": spec.interval_days,
                    "doses_in_series": 2,
                    "minimum_age": 12,
                },
            )
        slots: list[Slot] = []
        for index in range(venues):
            template = _venue_template(index)
            address = f"{municipality.prefecture}{municipality.name}{template.street}"
            venue, _ = Venue.objects.get_or_create(
                name=template.name,
                defaults={
                    "area": template.area,
                    "address": address,
                    "access_notes": template.access_notes,
                    "accessibility": template.accessibility,
                    "map_url": "https://www.openstreetmap.org/search?query=" + quote(address),
                },
            )
            venue.products.add(*(products[code] for code in template.products))
            web, line, call_centre = template.capacity
            # Today at the first venue, whatever the day: the venue's desk has a day to try.
            for offset in range(0 if index == 0 else 1, days + 1):
                day = today + timedelta(days=offset)
                if day.weekday() >= 5 and offset:  # weekdays only
                    continue
                # A venue with two vaccines alternates them by day: one vaccine per session.
                product = products[template.products[day.toordinal() % len(template.products)]]
                slots.extend(
                    Slot(
                        venue=venue,
                        product=product,
                        starts_at=start,
                        ends_at=start + timedelta(minutes=SLOT_MINUTES),
                        capacity_web=web,
                        capacity_line=line,
                        capacity_call_centre=call_centre,
                    )
                    for start in _slot_starts(day)
                )
        before = Slot.objects.count()
        Slot.objects.bulk_create(slots, ignore_conflicts=True, batch_size=1000)
        created_slots = Slot.objects.count() - before
        # 65 and over may book from today; everyone from 12 in a week, at 9:00.
        AgePhase.objects.get_or_create(
            name="65歳以上",
            defaults={
                "minimum_age": 65,
                "opens_at": datetime.combine(today, time.min, tzinfo=JAPAN),
            },
        )
        AgePhase.objects.get_or_create(
            name="12歳以上",
            defaults={
                "minimum_age": 12,
                "opens_at": datetime.combine(today + timedelta(days=7), time(9), tzinfo=JAPAN),
            },
        )
        policy = BookingPolicy.current()
        if not policy.call_centre_phone:
            policy.call_centre_phone = DEMO_CALL_CENTRE_PHONE
            policy.call_centre_hours = DEMO_CALL_CENTRE_HOURS
            policy.save(update_fields=["call_centre_phone", "call_centre_hours", "updated_at"])
        record(
            action="demo.data_created",
            actor=Actor.system("demo"),
            details={"days": days, "venues": venues, "slots_created": created_slots},
        )
    return DemoSummary(
        products=VaccineProduct.objects.count(),
        venues=Venue.objects.count(),
        slots=Slot.objects.count(),
        age_phases=AgePhase.objects.count(),
    )


def demo_venue_day(vouchers: list[Voucher]) -> list[Booking]:
    """Today's bookings of ``vouchers`` at the first venue (one each, in the next slots to
    start, or the day's last one), for the venue's desk to receive: made as the booking
    service leaves them, their places claimed, since the service books no slot this close.
    A voucher with a live booking already keeps it. Idempotent."""
    today = timezone.localdate(timezone=JAPAN)
    start = datetime.combine(today, time.min, tzinfo=JAPAN)
    first = Venue.objects.order_by("pk").first()
    slots = list(
        Slot.objects.filter(
            venue=first, starts_at__gte=start, starts_at__lt=start + timedelta(days=1)
        ).order_by("starts_at")
    )
    if not slots:
        return []
    upcoming = [slot for slot in slots if slot.starts_at >= timezone.now()] or slots[-1:]
    made: list[Booking] = []
    with transaction.atomic():
        for voucher, slot in zip(vouchers, upcoming * len(vouchers), strict=False):
            if voucher.bookings.filter(status__in=Booking.LIVE_STATUSES).exists():
                continue
            claimed = Slot.objects.filter(
                pk=slot.pk, booked_call_centre__lt=F("capacity_call_centre")
            ).update(booked_call_centre=F("booked_call_centre") + 1)
            if not claimed:
                continue
            made.append(
                Booking.objects.create(
                    booking_number=booking_number_new(),
                    voucher=voucher,
                    slot=slot,
                    dose=1,
                    channel=Channel.CALL_CENTRE,
                    booked_through=Channel.CALL_CENTRE,
                    actor_kind=Actor.SYSTEM,
                    actor_id="demo",
                )
            )
        if made:
            record(
                action="demo.data_created",
                actor=Actor.system("demo"),
                details={"venue_day_bookings": [booking.pk for booking in made]},
            )
    return made
