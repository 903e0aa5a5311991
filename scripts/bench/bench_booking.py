"""A booking rush through the real booking service, next to the bare SQL of the same claim.

    cd /work/main && .venv/bin/python scripts/bench/bench_booking.py \\
        [--threads 8,32] [--slots 300] [--capacity 10] [--vouchers 5000] [--hot 0.2] \\
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--app-role sesshu] \\
        [--database bench_booking] [--tree HEAD|<commit>|live] [--keep] \\
        [--http [--workers 2] [--gunicorn-threads 1] [--http-clients 64] [--http-follow yes] \\
         [--http-login during|before|both]] \\
        [--http-only] [--redis-cut refuse|hang] [--page-costs N] \\
        [--profile [--profile-page KIND]] [--py-spy FILE] [--redis-url redis://...]

Run on purpose, never by the test suite. It works in a database of its own (``--database``,
which must start with ``bench_``), created with a superuser's URL through tenants.db.bootstrap,
migrated with ``manage.py migrate_schemas --shared`` in owner mode, and dropped together with
its tenant roles at the end.

Set-up: one municipality provisioned through ``municipality_provision``; ``--slots`` slots over
ten venues with ``--capacity`` web places each; ``--vouchers`` vouchers sealed with the
municipality's key and inserted directly (as the registry import leaves them), all of an age
whose phase is open.

The rush, for each thread count: every voucher tries to book once; each thread takes the next
voucher and books a random slot among the ``--hot`` share of slots still believed open (the
earliest ones: everyone wants the first days), moving on to another when told "full" — at most
five tries, as a resident would. Every thread has its own database connection. Measured:

(a) ``booking.services.booking.booking_create`` — the real transaction: voucher lock, policy,
    dose history, birth date decrypted for the age phase, the conditional UPDATE, the INSERT,
    the outbox call, the audit event;
(b) the baseline: the same claim and insert as bare SQL in one transaction
    (``UPDATE booking_slot ... WHERE booked_web < capacity_web``; ``INSERT INTO booking_booking``).

Every process uses Redis as its cache (``--redis-url``, a database the bench empties of its keys
before each rush and at the end), as in production.

Reported per run: successful bookings per second, attempts per second, p50/p99 latency of an
attempt, and the integrity checks (slots whose counter differs from their live bookings, slots
over capacity, vouchers with two live bookings of a dose) — all must be 0. Ratios are (a)/(b).

``--http`` also serves the application with gunicorn on 127.0.0.1 (the repository's
gunicorn.conf.py, ``--workers`` x ``--gunicorn-threads``, DATABASE_POOL=1 and Redis as in the
pods; SESSHU_HTTPS=0 and SESSHU_TRUSTED_PROXY_COUNT=1 in its environment only) against the
same database, and rushes it from a separate load-generator process (booking_http.py,
``--http-clients`` threads with one keep-alive connection each, one X-Forwarded-For address per
resident): GET /login/, POST voucher number + birth date, GET /mypage/, POST
/book/slot/<id>/ until a 302 to the done page (a 409 "full" moves to another slot, at most five
tries), GET the done page (``--http-follow no`` skips the two GETs that follow redirects;
``--http-choose`` adds, before the first POST, the dates page and the chosen slot's day, and
before each POST the slot's confirmation, as a resident choosing a slot opens them).
``--http-login before`` logs every resident in first, untimed, as residents waiting for
booking to open would be, so that the rush is the booking POSTs alone: the HTTP counterpart of
(a) and (b), which time the booking transaction alone.
Reported next to (a) and (b): bookings/s, p50/p99 of the booking POST and of the login POST,
outcomes and errors, the same integrity checks, ratios, and who used the CPU meanwhile.

Configuration (2 vCPUs shared with other benchmarks; 1,500 residents for 1,000 places, 64
clients, browser flow): 2x1 (sync), 2x4, 4x1 and 4x4 workers x threads all served 4-6
residents/s (3-4 bookings/s); the differences were within the noise of the other load on the
machine. gunicorn CPU per resident: 2x1 181 ms, 4x4 189 ms, 4x1 194 ms, 2x4 205 ms, so on a
2-core box: 2 workers of 1 thread (the defaults here; 3 x 1 does as well now that a worker
waits on the database for a good part of each request). At 645f9fb a resident's five pages
cost about 19 ms of gunicorn CPU and a booking POST 4.6 ms: the goal of 333 bookings/s is out
of reach by a factor of about 2 for booking POSTs of residents already logged in and about 10
for residents who log in during the rush (figures in scripts/bench/README.md, "Stop 13").
"""

from __future__ import annotations

import argparse
import base64
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from booking_http import (
    Gunicorn,
    HttpRushResult,
    LoadPlan,
    RedisBetween,
    gunicorn_cpu,
    gunicorn_errors,
    gunicorn_serving,
    load_generator,
    machine_busy_seconds,
    percentile,
    postgres_backends_cpu,
    probe,
    redis_forget,
)

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO  # the tree under test; set by use_tree() before the project is imported
STARTED = time.perf_counter()
MUNICIPALITY = {"code": "132110", "subdomain": "kodaira", "name": "小平市"}
VENUES = 10
TRIES = 5


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", flush=True)


# --- Environment (as scripts/bench/bench_provision.py does it) ---------------------------------


def app_url(admin_url: str, *, role: str, database: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(role)}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + quote(database), parts.query, ""))


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def use_tree(revision: str) -> str:
    """Export ``revision`` to a temporary folder (default HEAD), or take the working tree."""
    global ROOT
    if revision == "live":
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
        description = f"working tree at {_git('rev-parse', '--short', 'HEAD')}"
        description += " with local changes" if dirty else ""
    else:
        commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}")
        ROOT = Path(tempfile.mkdtemp(prefix="bench_booking_"))
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(ROOT)], input=archive, check=True)
        description = f"commit {commit[:12]} exported to {ROOT}"
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    return description


def configure_environment(args: argparse.Namespace, database_url: str) -> None:
    """What settings.py reads, before Django is imported: nothing that reaches another
    database, a real KMS key, a broker or Sentry."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "sesshu.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DATABASE_ADMIN_URL"] = args.admin_url
    os.environ["SESSHU_DB_APP_ROLE"] = args.app_role
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query in memory
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(64)
    os.environ["SESSHU_KEY_PROVIDER"] = "local"
    os.environ["SESSHU_LOCAL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    os.environ["SESSHU_BASE_DOMAIN"] = BASE_DOMAIN
    os.environ["LOG_LEVEL"] = "WARNING"
    for name in (
        "SESSHU_DB_OWNER_MODE",
        "DATABASE_POOL",
        "REDIS_URL",
        "SESSHU_HTTPS",
        "SESSHU_TRUSTED_PROXY_COUNT",
        "SESSHU_PUBLIC_PORT",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "SENTRY_DSN",
        "AWS_STORAGE_BUCKET_NAME",
        "SESSHU_TESTING",
    ):
        os.environ.pop(name, None)
    if args.redis_url:
        # The cache every process shares, as in production (throttle counters, availability).
        os.environ["REDIS_URL"] = args.redis_url


def manage(*arguments: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *arguments],
        cwd=ROOT,
        env=dict(os.environ, SESSHU_DB_OWNER_MODE="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-6000:])
        raise SystemExit(f"manage.py {' '.join(arguments)} failed")
    return time.perf_counter() - started


def quiet_log_output() -> None:
    """Log records are still formatted (a real cost: every booking ships an audit line), but
    written to /dev/null instead of over the report."""
    import logging

    sink = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)


# --- Set-up -------------------------------------------------------------------------------------


@dataclass
class Stage:
    municipality: Any
    slot_ids: list[int]  # earliest first
    voucher_ids: list[int]
    slot_days: dict[int, str]  # slot id -> its day in Japan (ISO)
    # What each resident types at the login page, in voucher_ids' order: (number, birth date).
    residents: list[tuple[str, str]] = field(default_factory=list)


def stage(args: argparse.Namespace) -> Stage:
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from audit.chain import Actor
    from booking.models import AgePhase, BookingPolicy, Slot, VaccineProduct, Venue, Voucher
    from tenants.crypto import cipher_for
    from tenants.models import Municipality
    from tenants.services import municipality_provision

    started = time.perf_counter()
    municipality = municipality_provision(
        code=MUNICIPALITY["code"],
        subdomain=MUNICIPALITY["subdomain"],
        name=MUNICIPALITY["name"],
        admin_email="admin@kodaira.example.jp",
        actor=Actor.system("bench_booking"),
    ).municipality
    connection.set_schema_to_public()
    # Voucher number + birth date: the resident login the HTTP rush goes through.
    municipality.login_mode = Municipality.LoginMode.VOUCHER_DOB
    municipality.save(update_fields=["login_mode"])
    log(f"provisioned {municipality.name} in {time.perf_counter() - started:.1f} s")
    japan = timezone.get_default_timezone()
    with tenant_context(municipality):
        policy = BookingPolicy.current()
        policy.opens_days_ahead, policy.closes_hours_before = 60, 24
        policy.save()
        AgePhase.objects.create(
            name="65歳以上", minimum_age=65, opens_at=timezone.now() - timedelta(days=1)
        )
        product = VaccineProduct.objects.create(
            code="pfizer", name="ファイザー社ワクチン", interval_days=19
        )
        venues = [
            Venue.objects.create(
                name=f"会場{i + 1}", area=f"地区{i % 4 + 1}", address="東京都小平市"
            )
            for i in range(VENUES)
        ]
        first_day = timezone.localdate() + timedelta(days=2)
        slots = []
        for index in range(args.slots):
            step = index // VENUES
            day = first_day + timedelta(days=step // 16)
            starts = datetime.combine(day, datetime.min.time(), tzinfo=japan) + timedelta(
                hours=9, minutes=30 * (step % 16)
            )
            slots.append(
                Slot(
                    venue=venues[index % VENUES],
                    product=product,
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=30),
                    capacity_web=args.capacity,
                    capacity_line=max(1, args.capacity // 5),
                    capacity_call_centre=max(1, args.capacity // 5),
                )
            )
        Slot.objects.bulk_create(slots, batch_size=1000)
        slot_ids = list(Slot.objects.order_by("starts_at", "id").values_list("id", flat=True))
        slot_days = {
            slot_id: timezone.localtime(starts_at, japan).date().isoformat()
            for slot_id, starts_at in Slot.objects.values_list("id", "starts_at")
        }
        started = time.perf_counter()
        cipher = cipher_for(municipality)
        rng = random.Random(20210503)  # noqa: S311  (demo data, not secrets)
        today = timezone.localdate()
        batch: list[Voucher] = []
        birth_dates: dict[str, str] = {}
        for index in range(args.vouchers):
            number = f"{index + 1:010d}"
            born = today - timedelta(days=365 * 66 + rng.randrange(365 * 25))
            values = {
                "name": "接種 太郎",
                "name_kana": "セッシュ タロウ",
                "birth_date": born.isoformat(),
                "sex": "1",
                "postal_code": "1870001",
                "address": "東京都小平市小川町1-1",
                "phone": None,
                "email": None,
                "address_number": number,
            }
            birth_dates[number] = born.isoformat()
            batch.append(
                Voucher(
                    voucher_number=number,
                    personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
                    content_hash=cipher.blind_index(number, purpose="bench"),
                )
            )
            if len(batch) == 2000:
                Voucher.objects.bulk_create(batch)
                batch = []
        Voucher.objects.bulk_create(batch)
        numbered = list(Voucher.objects.order_by("id").values_list("id", "voucher_number"))
        voucher_ids = [voucher_id for voucher_id, _number in numbered]
        residents = [(number, birth_dates[number]) for _id, number in numbered]
    connection.set_schema_to_public()
    log(
        f"{len(slot_ids)} slots ({args.capacity} web places each, {len(slot_ids) * args.capacity} "
        f"in all), {len(voucher_ids)} vouchers sealed and inserted in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return Stage(municipality, slot_ids, voucher_ids, slot_days, residents)


def reset(stage_: Stage) -> None:
    """Back to no bookings (the audit trail, append-only, keeps growing: that is real too)."""
    from django.db import connection, transaction
    from django_tenants.utils import tenant_context

    with tenant_context(stage_.municipality), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM booking_notification")
            cursor.execute("DELETE FROM booking_booking")
            cursor.execute(
                "UPDATE booking_slot SET booked_web = 0, booked_line = 0, booked_call_centre = 0"
            )
    connection.set_schema_to_public()
    # Availability cached before the reset would show the slots still full.
    redis_forget(os.environ.get("REDIS_URL", ""), stage_.municipality.schema_name)


# --- The rush -----------------------------------------------------------------------------------


class Full(Exception):
    pass


@dataclass
class RushResult:
    label: str
    threads: int
    processes: int = 1
    wall: float = 0.0
    booked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    integrity: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Wall seconds and counts per kind of SQL statement, summed over every thread.
    sql_seconds: Counter[str] = field(default_factory=Counter)
    sql_count: Counter[str] = field(default_factory=Counter)

    @property
    def attempts(self) -> int:
        return len(self.latencies)

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def service_attempt(stage_: Stage) -> Callable[[int, int], None]:
    """One booking through the real service; raises Full when the slot had no place left."""
    from audit.chain import Actor
    from booking.models import Slot, Voucher
    from booking.services.booking import BookingRefused, booking_create

    def attempt(voucher_id: int, slot_id: int) -> None:
        voucher = Voucher.objects.only("id", "voucher_number").get(pk=voucher_id)
        slot = Slot(pk=slot_id)  # the service loads the slot itself
        try:
            booking_create(
                voucher=voucher, slot=slot, channel="web", actor=Actor.resident(voucher_id)
            )
        except BookingRefused as refusal:
            if refusal.code == "full":
                raise Full from refusal
            raise

    return attempt


def raw_attempt(stage_: Stage) -> Callable[[int, int], None]:
    """The baseline: the same claim and insert, bare SQL, one transaction."""
    from django.db import connection, transaction

    from booking.models.bookings import booking_number_new

    def attempt(voucher_id: int, slot_id: int) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE booking_slot SET booked_web = booked_web + 1 "
                "WHERE id = %s AND status = 'open' AND booked_web < capacity_web RETURNING id",
                [slot_id],
            )
            if cursor.fetchone() is None:
                raise Full
            cursor.execute(
                "INSERT INTO booking_booking (booking_number, voucher_id, slot_id, dose, channel, "
                "booked_through, status, actor_kind, actor_id, created_at) "
                "VALUES (%s, %s, %s, 1, 'web', 'web', 'active', 'resident', %s, now())",
                [booking_number_new(), voucher_id, slot_id, str(voucher_id)],
            )

    return attempt


def rush(
    stage_: Stage,
    *,
    label: str,
    processes: int,
    threads: int,
    hot_share: float,
    make_attempt: Callable[[Stage], Callable[[int, int], None]],
) -> RushResult:
    """``processes`` x ``threads`` residents at once (processes, like gunicorn workers, each
    with their own interpreter lock); the vouchers are shared out between the processes."""
    import multiprocessing

    from django.db import connections

    if processes == 1:
        result = _rush_threads(
            stage_, label=label, threads=threads, hot_share=hot_share, make_attempt=make_attempt
        )
    else:
        context = multiprocessing.get_context("fork")
        start = context.Barrier(processes + 1)
        answers = context.Queue()

        def child(index: int) -> None:
            share = Stage(
                stage_.municipality,
                stage_.slot_ids,
                stage_.voucher_ids[index::processes],
                stage_.slot_days,
            )
            part = _rush_threads(
                share,
                label=label,
                threads=threads,
                hot_share=hot_share,
                make_attempt=make_attempt,
                before_start=start.wait,
                seed=index * 1000,
            )
            answers.put(
                (part.outcomes, part.latencies, part.errors, part.sql_seconds, part.sql_count)
            )

        connections.close_all()  # a forked child must not share the parent's socket
        children = [context.Process(target=child, args=(i,)) for i in range(processes)]
        for process in children:
            process.start()
        start.wait()
        started = time.perf_counter()
        result = RushResult(label, threads)
        for _child in children:
            outcomes, latencies, errors, sql_seconds, sql_count = answers.get()
            result.sql_seconds.update(sql_seconds)
            result.sql_count.update(sql_count)
            result.outcomes.update(outcomes)
            result.latencies.extend(latencies)
            result.errors.extend(errors[: max(0, 5 - len(result.errors))])
        result.wall = time.perf_counter() - started
        for process in children:
            process.join()
    result.processes = processes
    result.booked = result.outcomes["booked"]
    result.integrity = integrity(stage_)
    return result


def _rush_threads(
    stage_: Stage,
    *,
    label: str,
    threads: int,
    hot_share: float,
    make_attempt: Callable[[Stage], Callable[[int, int], None]],
    before_start: Callable[[], object] | None = None,
    seed: int = 0,
) -> RushResult:
    from django.db import connection, connections

    result = RushResult(label, threads)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for voucher_id in stage_.voucher_ids:
        todo.put(voucher_id)
    hot = stage_.slot_ids[: max(1, int(len(stage_.slot_ids) * hot_share))]
    believed_open = list(stage_.slot_ids)  # what the cached availability would still show
    lock = threading.Lock()
    connected = threading.Barrier(threads + 1)
    go = threading.Event()

    def worker(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        sql_seconds: Counter[str] = Counter()
        sql_count: Counter[str] = Counter()

        def timed(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                kind = _statement_kind(sql)
                sql_seconds[kind] += time.perf_counter() - began
                sql_count[kind] += 1

        try:
            connection.set_tenant(stage_.municipality)
            connection.ensure_connection()
            attempt = make_attempt(stage_)
            connection.execute_wrappers.append(timed)
            connected.wait()
            go.wait()
            while True:
                try:
                    voucher_id = todo.get_nowait()
                except queue.Empty:
                    break
                for _try in range(TRIES):
                    with lock:
                        open_hot = [s for s in hot if s in believed_open_set]
                        choices = open_hot or believed_open
                        if not choices:
                            break
                        slot_id = rng.choice(choices)
                    started = time.perf_counter()
                    try:
                        attempt(voucher_id, slot_id)
                    except Full:
                        latencies.append(time.perf_counter() - started)
                        outcomes["full"] += 1
                        with lock:
                            if slot_id in believed_open_set:
                                believed_open_set.discard(slot_id)
                                believed_open.remove(slot_id)
                        continue
                    except Exception as exc:  # reported below, not hidden
                        latencies.append(time.perf_counter() - started)
                        outcomes[type(exc).__name__] += 1
                        with lock:
                            if len(result.errors) < 5:
                                result.errors.append(f"{type(exc).__name__}: {exc}")
                        break
                    latencies.append(time.perf_counter() - started)
                    outcomes["booked"] += 1
                    break
        finally:
            connections.close_all()
            with lock:
                result.latencies.extend(latencies)
                result.outcomes.update(outcomes)
                result.sql_seconds.update(sql_seconds)
                result.sql_count.update(sql_count)

    believed_open_set = set(believed_open)
    pool = [threading.Thread(target=worker, args=(seed + i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    connected.wait()
    if before_start is not None:
        before_start()
    go.set()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    result.wall = time.perf_counter() - started
    return result


def _statement_kind(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:4])
    if head.startswith("SAVEPOINT") or head.startswith("RELEASE SAVEPOINT"):
        return "SAVEPOINT / RELEASE"
    if head.startswith("SET search_path"):
        return "SET search_path; SET ROLE"
    return head[:56]


def integrity(stage_: Stage) -> dict[str, int]:
    from django.db import connection
    from django_tenants.utils import tenant_context

    checks = {
        "counter_mismatch": """
            SELECT count(*) FROM booking_slot s
             WHERE s.booked_web <> (SELECT count(*) FROM booking_booking b
                                     WHERE b.slot_id = s.id AND b.channel = 'web'
                                       AND b.status IN ('active', 'checked_in'))""",
        "overbooked_slots": """
            SELECT count(*) FROM booking_slot s
             WHERE s.capacity_web < (SELECT count(*) FROM booking_booking b
                                      WHERE b.slot_id = s.id AND b.channel = 'web'
                                        AND b.status IN ('active', 'checked_in'))""",
        "double_bookings": """
            SELECT count(*) FROM (SELECT voucher_id, dose FROM booking_booking
                                   WHERE status IN ('active', 'checked_in')
                                   GROUP BY voucher_id, dose HAVING count(*) > 1) d""",
    }
    found = {}
    with tenant_context(stage_.municipality), connection.cursor() as cursor:
        for name, sql in checks.items():
            cursor.execute(sql)
            found[name] = int(cursor.fetchone()[0])
    connection.set_schema_to_public()
    return found


def profile_service(stage_: Stage, bookings: int = 200) -> None:
    """Where the time of one booking goes: SQL statements and a cProfile, one thread."""
    import cProfile
    import io
    import pstats

    from django.db import connection
    from django_tenants.utils import tenant_context

    statements: Counter[str] = Counter()
    sql_seconds = 0.0

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
        nonlocal sql_seconds
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds += time.perf_counter() - started
            statements[" ".join(sql.split()[:4])[:60]] += 1

    reset(stage_)
    attempt = service_attempt(stage_)
    slots = stage_.slot_ids
    profiler = cProfile.Profile()
    with tenant_context(stage_.municipality), connection.execute_wrapper(count):
        started = time.perf_counter()
        profiler.enable()
        full = 0
        for index, voucher_id in enumerate(stage_.voucher_ids[:bookings]):
            try:
                attempt(voucher_id, slots[index % len(slots)])
            except Full:
                full += 1  # a small stage runs out of places: those count as refusals
        profiler.disable()
        wall = time.perf_counter() - started
    connection.set_schema_to_public()
    print(
        f"profile: {bookings} bookings in {wall:.2f} s ({wall / bookings * 1000:.1f} ms each), "
        f"{sum(statements.values()) / bookings:.1f} SQL statements each, "
        f"{sql_seconds / bookings * 1000:.1f} ms of it in SQL; {full} refused as full"
    )
    for statement, times in statements.most_common(25):
        print(f"  {times / bookings:5.2f} x  {statement}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())


def page_costs(
    stage_: Stage, residents: int, *, profile: bool = False, profile_page: str = ""
) -> None:
    """What each page of the resident's way costs, one resident after another in this process,
    through the whole middleware stack (Django's test client; no gunicorn, no network, no
    concurrency): wall and CPU ms, SQL statements and their ms, per request. Independent of
    how loaded the machine is, as far as anything is. With ``profile_page`` (a kind of
    request, e.g. "full slot POST"), the profile covers that kind's requests alone."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import tenant_context

    reset(stage_)
    rows: dict[str, list[tuple[float, float, int, float]]] = {}

    def timed(kind: str, client: Any, path: str, data: dict[str, str] | None = None) -> Any:
        alone = profile and kind == profile_page
        with CaptureQueriesContext(connection) as queries:
            if alone:
                profiler.enable()
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.get(path) if data is None else client.post(path, data)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if alone:
                profiler.disable()
        sql = sum(float(query["time"]) for query in queries.captured_queries)
        rows.setdefault(kind, []).append((wall, cpu, len(queries), sql))
        if profile and len(rows[kind]) == 2:  # the second resident's (the first warms up)
            print(f"{kind} {path}: {response.status_code}")
            for query in queries.captured_queries:
                print(f"    {query['time']}  {' '.join(query['sql'].split())[:150]}")
        return response

    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    # In a rush most residents are first told that the slot they chose has just filled up:
    # one slot is full from the start, and each resident tries it before their own.
    full_slot, *open_slots = stage_.slot_ids
    with tenant_context(stage_.municipality), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE booking_slot SET booked_web = capacity_web WHERE id = %s"
            " RETURNING (starts_at AT TIME ZONE 'Asia/Tokyo')::date",
            [full_slot],
        )
        (first_day,) = cursor.fetchone()
    connection.set_schema_to_public()

    if profile and not profile_page:
        profiler.enable()
    for index in range(residents):
        number, born = stage_.residents[index]
        year, month, day = (str(int(part)) for part in born.split("-"))
        client = Client(HTTP_HOST=SITE, REMOTE_ADDR=f"10.1.{index // 250}.{index % 250 + 1}")
        timed("login page GET", client, "/login/")
        typed = {
            "voucher_number": number,
            "birth_date_year": year,
            "birth_date_month": month,
            "birth_date_day": day,
        }
        answer = timed("login POST", client, "/login/", typed)
        assert answer.status_code == 302, answer.status_code
        timed("mypage GET", client, answer["Location"])
        # The dates, then the first day's venues and slots, as every resident sees them
        # before choosing.
        timed("dates page GET", client, "/book/")
        timed("slots page GET", client, f"/book/{first_day.isoformat()}/")
        answer = timed("full slot POST", client, f"/book/slot/{full_slot}/", {})
        assert answer.status_code == 409, answer.status_code
        slot_id = open_slots[index % len(open_slots)]
        timed("confirm page GET", client, f"/book/slot/{slot_id}/")
        answer = timed("booking POST", client, f"/book/slot/{slot_id}/", {})
        assert answer.status_code == 302, answer.status_code
        timed("done page GET", client, answer["Location"])
    profiler.disable()
    connection.set_schema_to_public()
    print(
        f"Page costs, in-process, one resident at a time ({residents} residents; mean per request):"
    )
    print(f"  {'request':<16} | {'wall ms':>7} | {'CPU ms':>6} | {'SQL':>5} | {'SQL ms':>6}")
    for kind, values in rows.items():
        count = len(values)
        print(
            f"  {kind:<16} | {sum(v[0] for v in values) / count * 1000:>7.1f} | "
            f"{sum(v[1] for v in values) / count * 1000:>6.1f} | "
            f"{sum(v[2] for v in values) / count:>5.1f} | "
            f"{sum(v[3] for v in values) / count * 1000:>6.1f}"
        )
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print(f"Own time by package (cProfile, {profile_page or 'all pages'}):")
        by_package: Counter[str] = Counter()
        for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
            by_package[_package_of(filename)] += row[2]
        everything = sum(by_package.values()) or 1.0
        for package, seconds in by_package.most_common(16):
            print(f"  {seconds / everything:6.1%}  {package}")
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(60)
        print(out.getvalue())
    reset(stage_)


def _package_of(filename: str) -> str:
    """django.template, psycopg, booking.resident, ... for a profiled function's file."""
    path = filename.replace(os.sep, "/")
    for marker in ("/site-packages/", str(ROOT).replace(os.sep, "/") + "/"):
        if marker in path:
            parts = path.split(marker, 1)[1].split("/")
            if parts[0] == "platform":
                parts = parts[1:]
            return (
                ".".join(parts[:2])
                if parts[0] == "django"
                else ".".join(parts[:2]).removesuffix(".py")
            )
    if path.startswith("~") or path.startswith("<"):
        return "builtins (C)"
    return "python stdlib"


# --- HTTP ---------------------------------------------------------------------------------------

BASE_DOMAIN = "bench.localhost"
SITE = f"{MUNICIPALITY['subdomain']}.{BASE_DOMAIN}"  # the municipality's host, chosen by Host


def http_rush(
    *,
    server: Gunicorn,
    stage_: Stage,
    args: argparse.Namespace,
    follow: bool,
    login_before: bool = False,
) -> HttpRushResult:
    """A rush through the resident pages, as residents make it, from a process of its own.

    Each resident: GET /login/ (the CSRF cookie and token), POST /login/ with voucher number and
    birth date (302 to /mypage/, a new session), [GET /mypage/], then POST /book/slot/<id>/ on a
    slot chosen as the in-process rush chooses them; a 409 saying the slot is full sends them to
    another (at most five tries); a 302 to /bookings/<number>/done/ is a booking [GET it]. The
    bracketed requests are the redirects a browser follows (``follow``). With
    ``login_before`` every resident logs in first, untimed (waiting for booking to open), and
    the rush is the booking POSTs alone. Then the same integrity checks as the in-process runs.
    """
    import multiprocessing

    reset(stage_)
    redis_forget(args.redis_url, stage_.municipality.schema_name)
    parts = urlsplit(server.base_url)
    plan = LoadPlan(
        host=parts.hostname or "127.0.0.1",
        port=int(parts.port or 80),
        site=SITE,
        residents=list(stage_.residents),
        slot_ids=list(stage_.slot_ids),
        hot_share=args.hot,
        clients=args.http_clients,
        follow=follow,
        tries=TRIES,
        login_before=login_before,
        choose=args.http_choose,
        slot_days=dict(stage_.slot_days),
    )
    random.Random(1).shuffle(plan.residents)  # noqa: S311  (not in voucher order)
    result = HttpRushResult(
        clients=args.http_clients,
        workers=args.workers,
        threads=args.gunicorn_threads,
        follow=follow,
        login_before=login_before,
        waiting_room=args.waiting_room,
        redis_cut=args.redis_cut or "",
        residents=len(plan.residents),
    )
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    go = context.Event()
    generator = context.Process(target=load_generator, args=(plan, answers, go), daemon=True)
    spy: subprocess.Popen[bytes] | None = None
    generator.start()
    try:
        if answers.get(timeout=1800) != "ready":
            raise SystemExit("the load generator did not start")
        if args.redis_cut:
            # Everyone has logged in through Redis; from now on it is gone.
            args.redis_between.cut(args.redis_cut)
            log(f"Redis cut ({args.redis_cut}) after the logins, before the rush")
        if args.py_spy:
            spy = subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    f"--pid={server.pid}",
                    "--subprocesses",
                    "--rate=97",
                    "--format=raw",
                    f"--output={args.py_spy}",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # attached before the rush begins
        postgres_before = postgres_backends_cpu(args.admin_url, args.database)
        gunicorn_before = gunicorn_cpu(server.pid)
        machine_before = machine_busy_seconds()
        go.set()
        answer = answers.get(timeout=3600)
        machine = machine_busy_seconds() - machine_before
        gunicorn = gunicorn_cpu(server.pid) - gunicorn_before
        postgres_after = postgres_backends_cpu(args.admin_url, args.database)
        postgres = sum(cpu - postgres_before.get(pid, 0.0) for pid, cpu in postgres_after.items())
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        generator.join(timeout=30)
        if generator.is_alive():
            generator.terminate()
            generator.join()
    result.wall = answer["wall"]
    result.last_booked = answer["last_booked"]
    result.outcomes = answer["outcomes"]
    result.statuses = answer["statuses"]
    result.latencies = answer["latencies"]
    result.errors = answer["errors"]
    result.reconnects = answer["reconnects"]
    result.waits = answer["waits"]
    result.cpu = {
        "load generator": answer["cpu"],
        "gunicorn": gunicorn,
        "postgres (bench db)": postgres,
        "rest of the machine": max(0.0, machine - answer["cpu"] - gunicorn - postgres),
        "machine": machine,
    }
    result.integrity = integrity(stage_)
    result.app_errors = gunicorn_errors(server)
    return result


# --- Report -------------------------------------------------------------------------------------


def report(
    tree: str,
    args: argparse.Namespace,
    runs: list[tuple[RushResult, RushResult]],
    http_runs: list[HttpRushResult],
) -> None:
    print()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"Code: {tree}. {os.cpu_count()} CPUs (load average now {load}); "
        f"Python {sys.version.split()[0]}."
    )
    print(
        f"{args.vouchers} vouchers rushing {args.slots} slots x {args.capacity} web places "
        f"({args.slots * args.capacity} places), hot share {args.hot:.0%}, up to {TRIES} tries "
        "each; one database connection per thread; several processes share out the vouchers."
    )
    header = (
        f"{'procs x threads':>15} | {'path':<8} | {'booked/s':>9} | {'attempts/s':>10} | "
        f"{'p50 ms':>7} | {'p99 ms':>7} | {'booked':>6} | {'full':>6} | {'other':>5} | "
        f"{'integrity':<9}"
    )
    print(header)
    print("-" * len(header))
    for service, raw in runs:
        for result in (service, raw):
            other = sum(v for k, v in result.outcomes.items() if k not in ("booked", "full"))
            clean = "ok" if not any(result.integrity.values()) else str(result.integrity)
            shape = f"{result.processes} x {result.threads}"
            print(
                f"{shape:>15} | {result.label:<8} | {result.booked / result.wall:>9.0f} | "
                f"{result.attempts / result.wall:>10.0f} | {result.percentile(0.5) * 1000:>7.1f} | "
                f"{result.percentile(0.99) * 1000:>7.1f} | {result.booked:>6} | "
                f"{result.outcomes['full']:>6} | {other:>5} | {clean:<9}"
            )
        throughput = (service.booked / service.wall) / (raw.booked / raw.wall)
        print(
            f"{'':>15}   ratio service/raw: booked/s x{throughput:.2f}, "
            f"p50 x{service.percentile(0.5) / raw.percentile(0.5):.1f}, "
            f"p99 x{service.percentile(0.99) / raw.percentile(0.99):.1f}"
        )
    print()
    print(
        "Where a booking's time goes, service path (wall ms per successful booking summed over "
        "all threads, so waits for locks count; statements per booking):"
    )
    for service, _raw in runs:
        booked = max(1, service.booked)
        total = sum(service.sql_seconds.values()) / booked * 1000
        shape = f"{service.processes} x {service.threads}"
        print(
            f"  {shape}: {sum(service.sql_count.values()) / booked:.1f} statements, {total:.1f} ms "
            f"in SQL of {service.wall * service.threads * service.processes / booked * 1000:.1f} "
            "ms per booking"
        )
        for kind, seconds in service.sql_seconds.most_common(8):
            per_booking = service.sql_count[kind] / booked
            print(f"    {seconds / booked * 1000:6.2f} ms  {per_booking:4.2f} x  {kind}")
    for service, raw in runs:
        for result in (service, raw):
            for error in result.errors:
                print(f"error ({result.label}, {result.threads} threads): {error}")
    if http_runs:
        report_http(http_runs, runs)
    print(f"wall time: {time.perf_counter() - STARTED:.0f} s")


def report_http(http_runs: list[HttpRushResult], runs: list[tuple[RushResult, RushResult]]) -> None:
    raw = max((pair[1] for pair in runs), key=lambda r: r.booked / r.wall, default=None)
    service = max((pair[0] for pair in runs), key=lambda r: r.booked / r.wall, default=None)
    raw_rate = raw.booked / raw.wall if raw else float("nan")
    service_rate = service.booked / service.wall if service else float("nan")
    print()
    print(
        f"HTTP rush: gunicorn on 127.0.0.1 (gunicorn.conf.py: sync workers for 1 thread, gthread "
        f"for more), a load generator process "
        f"on the same {os.cpu_count()} CPUs; each resident GET /login/, POST /login/, "
        "[GET /mypage/], POST /book/slot/<id>/ (up to 5 slots), [GET the done page]; "
        "[...] only when following redirects. Goal: 333 booked/s, booking POST p99 < 500 ms."
    )
    header = (
        f"{'workers x thr':>13} | {'clients':>7} | {'follow':>6} | {'login':>6} | "
        f"{'booked/s':>8} | {'req/s':>6} | {'book p50':>8} | {'book p99':>8} | {'login p50':>9} | "
        f"{'login p99':>9} | {'booked':>6} | {'full':>5} | {'errors':>6} | {'integrity':<9}"
    )
    print(header)
    print("-" * len(header))
    for result in http_runs:
        book = result.latencies.get("booking POST", [])
        login = result.latencies.get("login POST", [])
        full = result.statuses.get("booking POST 409", 0)
        errors = sum(
            count
            for outcome, count in result.outcomes.items()
            if outcome not in ("booked", "no slot left", f"full {TRIES} times")
        )
        clean = "ok" if not any(result.integrity.values()) else str(result.integrity)
        shape = f"{result.workers} x {result.threads}"
        print(
            f"{shape:>13} | {result.clients:>7} | {'yes' if result.follow else 'no':>6} | "
            f"{'before' if result.login_before else 'during':>6} | "
            f"{result.booked / result.wall:>8.0f} | {result.requests / result.wall:>6.0f} | "
            f"{percentile(book, 0.5) * 1000:>8.1f} | {percentile(book, 0.99) * 1000:>8.1f} | "
            f"{percentile(login, 0.5) * 1000:>9.1f} | {percentile(login, 0.99) * 1000:>9.1f} | "
            f"{result.booked:>6} | {full:>5} | {errors:>6} | {clean:<9}"
        )
    print()
    for result in http_runs:
        rate = result.booked / result.wall
        shape = f"{result.workers} x {result.threads}, {result.clients} clients"
        if result.login_before:
            shape += ", logged in before the rush"
        if result.waiting_room:
            shape += f", waiting room {result.waiting_room:,} a minute"
        if result.redis_cut:
            shape += f", Redis cut ({result.redis_cut}) before the rush"
        print(
            f"  {shape}: {result.residents} residents in {result.wall:.1f} s "
            f"({result.residents / result.wall:.0f} residents/s; the last booking at "
            f"{result.last_booked:.1f} s, {result.booked / max(result.last_booked, 1e-9):.0f} "
            f"booked/s until then); {result.requests} requests, {result.reconnects} reconnects"
        )
        book_p99 = percentile(result.latencies.get("booking POST", []), 0.99)
        print(
            f"    booked/s vs raw SQL ({raw_rate:.0f}/s): x{rate / raw_rate:.3f}; "
            f"vs the in-process service ({service_rate:.0f}/s): x{rate / service_rate:.2f}; "
            f"goal 333/s: {'met' if rate >= 333 else 'not met'}, booking p99 < 500 ms: "
            f"{'met' if book_p99 < 0.5 else 'not met'}"
        )
        kinds = ", ".join(
            f"{kind} {len(values)} x p50 {percentile(values, 0.5) * 1000:.0f} / "
            f"p99 {percentile(values, 0.99) * 1000:.0f} ms"
            for kind, values in result.latencies.items()
        )
        print(f"    requests: {kinds}")
        print(f"    residents: {dict(result.outcomes.most_common())}")
        if result.waits:
            print(
                f"    waiting room: {len(result.waits)} of {result.residents} residents waited, "
                f"p50 {percentile(result.waits, 0.5):.0f} s, p99 "
                f"{percentile(result.waits, 0.99):.0f} s, longest {max(result.waits):.0f} s"
            )
        print(f"    booking POST answers: {dict(result.statuses.most_common())}")
        machine = result.cpu.get("machine", 0.0)
        shares = ", ".join(
            f"{name} {seconds:.1f} s ({seconds / result.wall:.2f} cores)"
            for name, seconds in result.cpu.items()
        )
        print(
            f"    CPU during the rush: {shares}; the machine was "
            f"{machine / (result.wall * (os.cpu_count() or 1)):.0%} busy"
        )
        for error in result.errors:
            print(f"    load generator error: {error}")
        for line in result.app_errors:
            print(f"    application error: {line}")


# --- Main ---------------------------------------------------------------------------------------


def parse_threads(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts are positive integers, e.g. 8,32")
    return values


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so every finally below runs: gunicorn, database, roles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=parse_threads, default=parse_threads("8,32"))
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the threads in this many processes each (like gunicorn workers)",
    )
    parser.add_argument("--slots", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=10, help="web places per slot")
    parser.add_argument("--vouchers", type=int, default=5000)
    parser.add_argument(
        "--hot", type=float, default=0.2, help="share of the earliest slots everyone wants first"
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--app-role", default="sesshu")
    parser.add_argument("--database", default="bench_booking")
    parser.add_argument("--tree", default="HEAD", help="commit to export, or 'live'")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/12",
        help="the cache of every process, as in production ('' for each process's memory); "
        "a Redis database nobody else uses: the bench deletes its keys there",
    )
    parser.add_argument("--http", action="store_true", help="also rush through gunicorn")
    parser.add_argument(
        "--workers",
        type=parse_threads,
        default=parse_threads("2"),
        help="gunicorn workers (2 on 2 cores: see the docstring)",
    )
    parser.add_argument(
        "--gunicorn-threads",
        type=parse_threads,
        default=parse_threads("1"),
        help="threads per gunicorn worker (gthread); each value x each --workers value is run",
    )
    parser.add_argument(
        "--http-clients", type=int, default=64, help="concurrent residents of the HTTP rush"
    )
    parser.add_argument(
        "--http-follow",
        choices=("yes", "no", "both"),
        default="yes",
        help="follow the 302s to /mypage/ and the done page as a browser does",
    )
    parser.add_argument(
        "--http-choose",
        action="store_true",
        help="each resident opens the dates page, the chosen slot's day and its confirmation "
        "before booking",
    )
    parser.add_argument(
        "--http-login",
        choices=("during", "before", "both"),
        default="during",
        help="residents log in during the rush, or all before it (untimed: waiting for "
        "booking to open) so that the rush is the booking POSTs alone",
    )
    parser.add_argument(
        "--no-pool",
        action="store_true",
        help="gunicorn without DATABASE_POOL (persistent connections instead)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="sample the gunicorn workers with py-spy during the HTTP rush (raw stacks)",
    )
    parser.add_argument(
        "--page-costs",
        type=int,
        default=0,
        metavar="N",
        help="first walk N residents through the pages in-process and print each page's cost",
    )
    parser.add_argument(
        "--http-only",
        action="store_true",
        help="skip the in-process runs (a) and (b): no ratios (for profiling the HTTP path)",
    )
    parser.add_argument(
        "--waiting-room",
        type=int,
        default=0,
        metavar="PER_MINUTE",
        help="gunicorn with the waiting room letting this many residents in a minute (0: off); "
        "the load generator waits in it as a browser does",
    )
    parser.add_argument(
        "--redis-cut",
        choices=["refuse", "hang"],
        default=None,
        help="with --http-login before: the application's Redis goes away once everyone has "
        "logged in, before the rush (refuse: connections refused; hang: nothing answers)",
    )
    parser.add_argument(
        "--profile-page",
        default="",
        help='with --profile and --page-costs, profile one kind of request ("full slot POST")',
    )
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile 200 service bookings in one thread first"
    )
    args = parser.parse_args()
    if not args.database.startswith("bench_"):
        parser.error("--database must start with bench_ (it is dropped and re-created)")
    if not 0 < args.hot <= 1 or args.slots < 1 or args.vouchers < 1 or args.capacity < 1:
        parser.error("--hot is in (0, 1]; --slots, --vouchers and --capacity are positive")
    if args.http_clients < 1:
        parser.error("--http-clients is positive")
    if args.redis_cut and (args.http_login != "before" or args.http_follow == "both"):
        parser.error("--redis-cut needs --http-login before and one --http-follow (yes or no)")

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Even when started in the background (SIGINT ignored), Ctrl-C / kill -INT cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tree = use_tree(args.tree)
    try:
        runs, http_runs = benchmark(args, tree)
    finally:
        if ROOT != REPO and not args.keep:
            shutil.rmtree(ROOT, ignore_errors=True)
    report(tree, args, runs, http_runs)


def benchmark(
    args: argparse.Namespace, tree: str
) -> tuple[list[tuple[RushResult, RushResult]], list[HttpRushResult]]:
    database_url = app_url(args.admin_url, role=args.app_role, database=args.database)
    configure_environment(args, database_url)
    log(f"code under test: {tree}")

    from tenants.db import bootstrap

    bootstrap.bootstrap_cluster(args.admin_url, app_role=args.app_role)
    bootstrap.create_database(
        args.admin_url, database=args.database, app_role=args.app_role, drop=True
    )
    bootstrap.drop_database_roles(args.admin_url, database=args.database)
    runs: list[tuple[RushResult, RushResult]] = []
    http_runs: list[HttpRushResult] = []
    staged: Stage | None = None
    try:
        bootstrap.bootstrap_database(args.admin_url, database=args.database, app_role=args.app_role)
        log(f"migrate_schemas --shared: {manage('migrate_schemas', '--shared', '--noinput'):.1f} s")
        import django

        django.setup()
        quiet_log_output()
        staged = stage(args)
        if args.profile:
            profile_service(staged)
        if args.page_costs:
            page_costs(
                staged, args.page_costs, profile=args.profile, profile_page=args.profile_page
            )
        for threads in [] if args.http_only else args.threads:
            results = []
            for label, make_attempt in (("service", service_attempt), ("raw SQL", raw_attempt)):
                reset(staged)
                result = rush(
                    staged,
                    label=label,
                    processes=args.processes,
                    threads=threads,
                    hot_share=args.hot,
                    make_attempt=make_attempt,
                )
                log(
                    f"{args.processes} x {threads} threads, {label}: {result.booked} booked "
                    f"in {result.wall:.1f} s "
                    f"({result.booked / result.wall:.0f}/s), integrity {result.integrity}"
                )
                results.append(result)
            runs.append((results[0], results[1]))
        if args.http:
            http_runs = http_rushes(args, staged)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if staged is not None and not args.keep:
            redis_forget(args.redis_url, staged.municipality.schema_name)
        if args.keep:
            log(f"kept database {args.database} (DATABASE_URL={database_url})")
        else:
            bootstrap.drop_database(args.admin_url, database=args.database)
            bootstrap.drop_database_roles(args.admin_url, database=args.database)
            log(f"dropped database {args.database} and its roles")
    return runs, http_runs


def http_rushes(args: argparse.Namespace, staged: Stage) -> list[HttpRushResult]:
    """One gunicorn per (workers, threads) asked for, one rush per way of following."""
    from django.db import connections

    follows = {"yes": [True], "no": [False], "both": [True, False]}[args.http_follow]
    logins = {"during": [False], "before": [True], "both": [False, True]}[args.http_login]
    results = []
    for workers in args.workers:
        for threads in args.gunicorn_threads:
            connections.close_all()
            # With --redis-cut the application reaches Redis through a relay the rush cuts.
            between = RedisBetween(args.redis_url) if args.redis_cut else None
            with gunicorn_serving(
                root=ROOT,
                workers=workers,
                threads=threads,
                redis_url=between.url if between else args.redis_url,
                pool=not args.no_pool,
                waiting_room=args.waiting_room,
            ) as server:
                log(
                    f"gunicorn (pid {server.pid}) with {workers} workers x {threads} threads "
                    f"answers at {server.base_url}"
                )
                log(f"the login page of {SITE}: HTTP {probe(server.base_url, SITE, '/login/')}")
                warm_up(server.base_url, requests=workers * threads * 4)
                for follow in follows:
                    for login_before in logins:
                        run_args = argparse.Namespace(**vars(args))
                        run_args.workers, run_args.gunicorn_threads = workers, threads
                        run_args.redis_between = between
                        result = http_rush(
                            server=server,
                            stage_=staged,
                            args=run_args,
                            follow=follow,
                            login_before=login_before,
                        )
                        connections.close_all()
                        log(
                            f"HTTP rush, {workers} x {threads}, {args.http_clients} clients, "
                            f"follow {'yes' if follow else 'no'}, logged in "
                            f"{'before' if login_before else 'during'}: {result.booked} booked in "
                            f"{result.wall:.1f} s ({result.booked / result.wall:.0f}/s), "
                            f"integrity {result.integrity}"
                        )
                        results.append(result)
            if between is not None:
                between.close()
    return results


def warm_up(base_url: str, *, requests: int) -> None:
    """Every worker thread renders the login page once or more (templates compiled, URL
    resolvers built) before the clock starts: a rush meets pods that have been up a while."""
    for _ in range(requests):
        probe(base_url, SITE, "/login/")


if __name__ == "__main__":
    main()
