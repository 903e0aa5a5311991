from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from tenants.models import Municipality
from tenants.services import municipality_provision, site_url

JAPAN = ZoneInfo("Asia/Tokyo")

# A made-up municipality with a valid code (prefecture 13, check digit 8) that is not in the
# national list, so the demo never poses as a real city.
DEMO_CODE = "139998"
DEMO_NAME = "デモ市"
DEMO_SUBDOMAIN = "demo"
DEMO_OPERATOR = "operator"
DEMO_REGISTRY_HEADER = "接種券番号,宛名番号,氏名,氏名カナ,生年月日,性別,郵便番号,住所,電話番号"
# Made-up residents (no real person): three aged 65+ who may book now, and younger ones.
DEMO_RESIDENTS = [
    "1399980001,9000001,出茂 花子,デモ ハナコ,1948-04-01,2,1870001,デモ市本町1-1,09000000001",
    "1399980002,9000002,出茂 太郎,デモ タロウ,1950-10-10,1,1870001,デモ市本町1-2,09000000002",
    "1399980003,9000003,見本 和子,ミホン カズコ,1941-01-20,2,1870002,デモ市栄町2-3,",
    "1399980004,9000004,見本 一郎,ミホン イチロウ,1985-06-15,1,1870002,デモ市栄町2-4,",
    "1399980005,9000005,試験 さくら,シケン サクラ,2001-03-03,2,1870003,デモ市緑町3-5,",
    # Booked today at the first venue, for its desk to receive (booking.demo.demo_venue_day).
    "1399980006,9000006,会場 春子,カイジョウ ハルコ,1944-05-05,2,1870001,デモ市本町1-6,",
    "1399980007,9000007,会場 秋夫,カイジョウ アキオ,1939-11-03,1,1870002,デモ市栄町2-7,",
]
VENUE_DAY_RESIDENTS = ("1399980006", "1399980007")


class Command(BaseCommand):
    help = "Create the demo municipality and a vendor operator for local development (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("manage.py demo_setup")
        municipality = Municipality.objects.filter(code=DEMO_CODE).first()
        if municipality is None:
            result = municipality_provision(
                code=DEMO_CODE,
                name=DEMO_NAME,
                subdomain=DEMO_SUBDOMAIN,
                admin_email="admin@demo.example.jp",
                login_mode=Municipality.LoginMode.VOUCHER_DOB,
                actor=actor,
            )
            municipality = result.municipality
            setup_link: str | None = result.admin_setup_url
        else:
            setup_link = self._fresh_admin_link(municipality, actor)
        self._demo_data(municipality, actor)
        host = municipality.get_primary_domain().domain
        self.stdout.write(self.style.SUCCESS(f"Demo municipality: {municipality}"))
        self.stdout.write(f"  Residents: {site_url(host, '/')}")
        self.stdout.write(f"  Console:   {site_url(host, '/console/')}")
        if setup_link:
            self.stdout.write(f"  First admin's single-use setup link: {setup_link}")
        self.stdout.write("  Demo residents who may book now (接種券番号 / 生年月日):")
        for line in DEMO_RESIDENTS[:3]:
            cells = line.split(",")
            self.stdout.write(f"    {cells[0]} / {cells[4]}")
        self._venue_day(municipality)
        self._operator()
        self.stdout.write(f"Control plane: {site_url(settings.SESSHU_PLATFORM_HOST, '/')}")

    def _demo_data(self, municipality: Municipality, actor: Actor) -> None:
        """Venues, slots, age phases and a few residents whose vouchers log in (voucher
        number and birth date, the demo's login mode)."""
        from booking.demo import demo_data_create
        from booking.models import RegistryImport, Voucher
        from booking.services.registry_import import (
            registry_import_apply,
            registry_import_confirm,
            registry_import_parse,
            registry_import_upload,
        )

        with tenant_context(municipality):
            demo_data_create()
            numbers = [line.split(",", 1)[0] for line in DEMO_RESIDENTS]
            # Imported again (an upsert: those already there unchanged) when one is missing,
            # as after an upgrade that added demo residents.
            if Voucher.objects.filter(voucher_number__in=numbers).count() < len(numbers):
                data = ("\r\n".join([DEMO_REGISTRY_HEADER, *DEMO_RESIDENTS]) + "\r\n").encode()
                registry_import = registry_import_upload(
                    stream=io.BytesIO(data),
                    file_name="demo.csv",
                    size=len(data),
                    actor=actor,
                    source=RegistryImport.Source.COMMAND,
                    enqueue=False,
                )
                registry_import_parse(registry_import_id=registry_import.pk)
                registry_import.refresh_from_db()
                registry_import_confirm(registry_import=registry_import, actor=actor, enqueue=False)
                registry_import_apply(registry_import_id=registry_import.pk)

    def _venue_day(self, municipality: Municipality) -> None:
        """Today's bookings at the first venue, said with what the desk looks them up by."""
        from booking.demo import demo_venue_day
        from booking.models import Booking, Voucher
        from booking.models.bookings import booking_number_display

        with tenant_context(municipality):
            vouchers = list(
                Voucher.objects.filter(voucher_number__in=VENUE_DAY_RESIDENTS).order_by(
                    "voucher_number"
                )
            )
            demo_venue_day(vouchers)
            today = (
                Booking.objects.filter(voucher__in=vouchers, status__in=Booking.LIVE_STATUSES)
                .select_related("slot__venue", "voucher")
                .order_by("voucher__voucher_number")
            )
            for booking in today:
                starts = booking.slot.starts_at.astimezone(JAPAN)
                self.stdout.write(
                    f"  Booked at {booking.slot.venue.name} on {starts:%Y-%m-%d %H:%M}"
                    " (console → 受付): 予約番号 "
                    f"{booking_number_display(booking.booking_number)}"
                    f" / 接種券番号 {booking.voucher.voucher_number}"
                )

    def _fresh_admin_link(self, municipality: Municipality, actor: Actor) -> str | None:
        from booking.models import StaffMember
        from booking.services.staff import staff_invite

        with schema_context(municipality.schema_name):
            if StaffMember.objects.filter(role=StaffMember.Role.ADMIN).exists():
                return None
            issued = staff_invite(
                email="admin@demo.example.jp", role="admin", invited_by=None, actor=actor
            )
        host = municipality.get_primary_domain().domain
        return site_url(host, f"/console/setup/{issued.token}/")

    def _operator(self) -> None:
        if get_user_model().objects.filter(username=DEMO_OPERATOR).exists():
            self.stdout.write(f"  Vendor operator '{DEMO_OPERATOR}' exists (password unchanged).")
            return
        call_command("operator_create", username=DEMO_OPERATOR, stdout=self.stdout)
