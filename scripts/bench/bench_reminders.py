"""A day's reminders: how long queuing takes and how much memory it needs, as the day grows.

    cd /work/main && .venv/bin/python scripts/bench/bench_reminders.py \\
        [--municipalities 5] [--totals 10000,50000] [--batch 2000] \\
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--app-role sesshu] \\
        [--database bench_reminders] [--redis redis://127.0.0.1:6379/14] [--keep]

Run on purpose, never by the test suite. It works in a database of its own (``--database``,
which must start with ``bench_``), created from scratch with a superuser's URL, migrated with
``manage.py migrate_schemas --shared``, and dropped with its tenant roles at the end.

It provisions ``--municipalities`` municipalities through the real service, then, for each
total T in ``--totals``, gives them T bookings between them on one day (vouchers sealed
under each municipality's key, contact preferences with encrypted addresses, a realistic mix
of channels: e-mail 60 %, SMS 30 %, LINE 20 %, none 15 %), and times one reminder pass per
municipality — ``reminders_queue_for_day`` inside its ``tenant_context``, the code the beat's
per-municipality task runs — including publishing the send tasks to a real Redis broker
(a queue of this run's own, deleted at the end; no worker consumes it). Then it times a
second pass (all reminders already queued: must add nothing).

Reported per total: rows queued, send tasks published, wall time, rows per second, the
Python heap's peak during the passes (tracemalloc) and the process's resident memory before
and after (VmRSS), and the high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
JAPAN = ZoneInfo("Asia/Tokyo")
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", flush=True)


def app_url(admin_url: str, *, role: str, database: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    netloc = f"{quote(role)}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + quote(database), parts.query, ""))


def proc_status(field_name: str) -> int:
    """A memory figure of this process from /proc, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def configure_environment(args: argparse.Namespace, database_url: str, queue: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "sesshu.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DATABASE_ADMIN_URL"] = args.admin_url
    os.environ["SESSHU_DB_APP_ROLE"] = args.app_role
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query in memory
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(64)
    os.environ["SESSHU_KEY_PROVIDER"] = "local"
    os.environ["SESSHU_LOCAL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    os.environ["SESSHU_BASE_DOMAIN"] = "bench.localhost"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CELERY_BROKER_URL"] = args.redis
    for name in ("SESSHU_DB_OWNER_MODE", "DATABASE_POOL", "REDIS_URL", "SENTRY_DSN"):
        os.environ.pop(name, None)
    os.environ["BENCH_QUEUE"] = queue


def manage(*arguments: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *arguments],
        cwd=ROOT,
        env=dict(os.environ, SESSHU_DB_OWNER_MODE="1"),
        check=True,
        capture_output=True,
    )


@dataclass
class Figures:
    total: int
    queued: int = 0
    tasks: int = 0
    seconds: float = 0.0
    per_municipality: list[float] = field(default_factory=list)
    second_pass_seconds: float = 0.0
    second_pass_queued: int = 0
    heap_peak_kib: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    hwm_kib: int = 0
    setup_seconds: float = 0.0


def fill(municipality: Any, count: int, day: date, seed: int) -> None:
    """``count`` active bookings on ``day`` in ``municipality``, each with preferences."""
    import random

    from django.db import transaction
    from django_tenants.utils import tenant_context

    from booking.models import (
        Booking,
        ContactPreference,
        Slot,
        VaccineProduct,
        Venue,
        Voucher,
    )
    from tenants.crypto import cipher_for

    rng = random.Random(seed)  # noqa: S311 - data for a benchmark
    with tenant_context(municipality), transaction.atomic():
        cipher = cipher_for(municipality)
        product, _ = VaccineProduct.objects.get_or_create(
            code="comirnaty", defaults={"name": "コミナティ", "interval_days": 21}
        )
        venue = Venue.objects.create(name="市民体育館", area="中央", address="中央1-1-1")
        start = datetime.combine(day, datetime.min.time(), tzinfo=JAPAN) + timedelta(hours=9)
        slots = Slot.objects.bulk_create(
            Slot(
                venue=venue,
                product=product,
                starts_at=start + timedelta(minutes=6 * i),
                ends_at=start + timedelta(minutes=6 * i + 30),
                capacity_web=10_000,
            )
            for i in range(100)
        )
        base = Voucher.objects.count()
        now = datetime.now(UTC)
        for offset in range(0, count, 5000):
            size = min(5000, count - offset)
            numbers = [f"{base + offset + i + 1:010d}" for i in range(size)]
            vouchers = Voucher.objects.bulk_create(
                Voucher(
                    voucher_number=number,
                    personal=cipher.seal_record(
                        {"name": "接種 太郎", "birth_date": "1950-01-01"},
                        table="booking_voucher",
                        row_id=number,
                    ),
                    content_hash=b"-",
                )
                for number in numbers
            )
            preferences = []
            for voucher in vouchers:
                roll = rng.random()
                email = roll < 0.60
                sms = 0.45 <= roll < 0.75
                line = 0.65 <= roll < 0.85
                row = voucher.voucher_number

                def seal(value: str, column: str, row: str = row) -> bytes:
                    return cipher.encrypt_field(
                        value, table=ContactPreference.TABLE, column=column, row_id=row
                    )

                preferences.append(
                    ContactPreference(
                        voucher=voucher,
                        email=seal(f"r{row}@example.jp", "email") if email else None,
                        email_consented_at=now if email else None,
                        phone=seal("+819012345678", "phone") if sms else None,
                        sms_consented_at=now if sms else None,
                        line_user_id=seal("U" + "0" * 32, "line_user_id") if line else None,
                        line_consented_at=now if line else None,
                    )
                )
            ContactPreference.objects.bulk_create(preferences)
            Booking.objects.bulk_create(
                Booking(
                    booking_number=f"B{base + offset + i + 1:09d}",
                    voucher=voucher,
                    slot=slots[i % len(slots)],
                    dose=1,
                    channel="web",
                    booked_through="web",
                    actor_kind="bench",
                )
                for i, voucher in enumerate(vouchers)
            )


def measure(municipalities: list[Any], day: date, batch: int, figures: Figures) -> None:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from booking.notifications.reminders import reminders_queue_for_day

    connection.close()
    figures.rss_before_kib = proc_status("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    for municipality in municipalities:
        one = time.perf_counter()
        with tenant_context(municipality):
            result = reminders_queue_for_day(day=day, batch_size=batch)
        figures.per_municipality.append(time.perf_counter() - one)
        figures.queued += result.queued
        figures.tasks += result.tasks
    figures.seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures.heap_peak_kib = peak // 1024
    figures.rss_after_kib = proc_status("VmRSS")
    figures.hwm_kib = proc_status("VmHWM")
    started = time.perf_counter()
    for municipality in municipalities:
        with tenant_context(municipality):
            figures.second_pass_queued += reminders_queue_for_day(day=day, batch_size=batch).queued
    figures.second_pass_seconds = time.perf_counter() - started


def run(args: argparse.Namespace, queue: str) -> list[Figures]:
    import django

    django.setup()

    import logging

    logging.getLogger("sesshu.audit").setLevel(logging.WARNING)

    from django.db import connection

    from audit.chain import Actor
    from sesshu.celery import app
    from tenants.codes import reference_municipalities
    from tenants.services import municipality_provision

    app.conf.update(task_always_eager=False, task_routes={"booking.*": {"queue": queue}})
    references = iter(reference_municipalities().values())
    municipalities = []
    for _ in range(args.municipalities):
        reference = next(references)
        municipalities.append(
            municipality_provision(
                code=reference.code,
                subdomain=f"b{reference.code}",
                admin_email=f"admin@b{reference.code}.example.jp",
                actor=Actor.system("bench_reminders"),
            ).municipality
        )
        connection.set_schema_to_public()
    log(f"provisioned {len(municipalities)} municipalities")
    # One small pass first, not reported: the first publish imports and connects the broker
    # client, which is not the day's size.
    warmup_day = date(2027, 1, 9)
    for index, municipality in enumerate(municipalities):
        fill(municipality, 50, warmup_day, seed=10_000 + index)
    connection.set_schema_to_public()
    measure(municipalities, warmup_day, args.batch, Figures(total=0))
    results = []
    for number, total in enumerate(args.totals):
        day = date(2027, 1, 10) + timedelta(days=number)
        started = time.perf_counter()
        for index, municipality in enumerate(municipalities):
            share = total // len(municipalities) + (1 if index < total % len(municipalities) else 0)
            fill(municipality, share, day, seed=number * 100 + index)
        connection.set_schema_to_public()
        figures = Figures(total=total, setup_seconds=time.perf_counter() - started)
        log(
            f"{total:,} bookings on {day} across {len(municipalities)} municipalities "
            f"({figures.setup_seconds:.1f} s to create)"
        )
        measure(municipalities, day, args.batch, figures)
        log(
            f"  queued {figures.queued:,} reminders ({figures.tasks:,} send tasks published) "
            f"in {figures.seconds:.2f} s; heap peak {figures.heap_peak_kib:,} KiB"
        )
        results.append(figures)
    return results


def report(args: argparse.Namespace, results: list[Figures], queue_length: int) -> None:
    print()
    print(
        f"Reminder queuing, {args.municipalities} municipalities, batches of {args.batch} bookings"
    )
    print(
        f"{'bookings':>9} {'reminders':>10} {'tasks':>6} {'seconds':>8} {'rows/s':>8} "
        f"{'slowest town s':>14} {'heap peak KiB':>13} {'RSS before→after MiB':>21} "
        f"{'HWM MiB':>8} {'2nd pass s':>10} {'2nd adds':>8}"
    )
    for f in results:
        print(
            f"{f.total:>9,} {f.queued:>10,} {f.tasks:>6,} {f.seconds:>8.2f} "
            f"{f.queued / f.seconds:>8,.0f} {max(f.per_municipality):>14.2f} "
            f"{f.heap_peak_kib:>13,} "
            f"{f.rss_before_kib / 1024:>10.1f}→{f.rss_after_kib / 1024:<10.1f} "
            f"{f.hwm_kib / 1024:>8.1f} {f.second_pass_seconds:>10.2f} {f.second_pass_queued:>8}"
        )
    print(f"send tasks waiting in the broker at the end: {queue_length:,} (queue deleted)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--municipalities", type=int, default=5)
    parser.add_argument(
        "--totals",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[10_000, 50_000],
        help="bookings in the day, all municipalities together; one run per value",
    )
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--app-role", default="sesshu")
    parser.add_argument("--database", default="bench_reminders")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    args = parser.parse_args()
    if not args.database.startswith("bench_"):
        parser.error("--database must start with bench_ (it is dropped and re-created)")

    queue = f"bench-reminders-{os.getpid()}"
    configure_environment(
        args, app_url(args.admin_url, role=args.app_role, database=args.database), queue
    )
    from tenants.db import bootstrap

    bootstrap.bootstrap_cluster(args.admin_url, app_role=args.app_role)
    bootstrap.create_database(
        args.admin_url, database=args.database, app_role=args.app_role, drop=True
    )
    bootstrap.drop_database_roles(args.admin_url, database=args.database)
    queue_length = 0
    try:
        bootstrap.bootstrap_database(args.admin_url, database=args.database, app_role=args.app_role)
        manage("migrate_schemas", "--shared", "--noinput")
        log(f"database {args.database} ready")
        results = run(args, queue)
    finally:
        import redis

        broker = redis.Redis.from_url(args.redis)
        queue_length = int(broker.llen(queue))
        broker.delete(queue)
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep:
            bootstrap.drop_database(args.admin_url, database=args.database)
            bootstrap.drop_database_roles(args.admin_url, database=args.database)
            log(f"dropped database {args.database} and its roles")
    report(args, results, queue_length)


if __name__ == "__main__":
    main()
