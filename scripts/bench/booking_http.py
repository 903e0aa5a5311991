"""The HTTP half of bench_booking.py: gunicorn serving the app, and the load generator.

Nothing here imports Django: the load generator runs in a process of its own (spawned by
bench_booking.py) that shares nothing with the application but the loopback interface.
"""

from __future__ import annotations

import html
import http.client
import ipaddress
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Gunicorn:
    base_url: str
    pid: int  # the master's; its workers are its children
    log: Path  # its stdout and stderr (the app's JSON lines)


class RedisBetween:
    """A TCP relay between the application and Redis, that the bench can cut mid-run: Redis
    failing over or stopping while residents book (``--redis-cut``).

    ``cut("refuse")`` closes every connection and the listening port, so every new one is
    refused (a Redis that is gone); ``cut("hang")`` stops relaying but keeps every connection
    open and accepts new ones, answering nothing (a partition: each command waits for the
    application's timeout)."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.upstream = (parts.hostname or "127.0.0.1", int(parts.port or 6379))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        port = int(self.listener.getsockname()[1])
        self.url = parts._replace(netloc=f"127.0.0.1:{port}").geturl()
        self.mode = "relay"
        self.clients: list[socket.socket] = []
        self.upstreams: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return  # the listener was closed: "refuse"
            with self.lock:
                self.clients.append(client)
                if self.mode != "relay":
                    continue  # "hang": held open, never answered
                upstream = socket.create_connection(self.upstream)
                self.upstreams.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while self.mode == "relay":
                data = source.recv(65536)
                if not data or self.mode != "relay":
                    return
                sink.sendall(data)
        except OSError:
            return

    def cut(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            closing = list(self.upstreams) + (list(self.clients) if mode == "refuse" else [])
            if mode == "refuse":
                self.listener.close()
        for each in closing:
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()

    def close(self) -> None:
        self.cut("refuse")


@contextmanager
def gunicorn_serving(
    *, root: Path, workers: int, threads: int, redis_url: str, pool: bool, waiting_room: int = 0
) -> Iterator[Gunicorn]:
    """The application under gunicorn on 127.0.0.1, against the benchmark database.

    Configured as the web pods are: the repository's gunicorn.conf.py (read from the working
    directory; only the bind address and the worker and thread counts are given here, so
    keep-alive, max-requests, /dev/shm heartbeats and the JSON access lines are production's)
    and DATABASE_POOL=1 as k8s/base/kustomization.yaml sets it (``pool``). Only the
    environment differs, for plain HTTP on loopback behind no real load balancer:

    - SESSHU_HTTPS=0: cookies without Secure and no HTTPS-only CSRF checks (never in the pods);
    - SESSHU_TRUSTED_PROXY_COUNT=1: the client is the last X-Forwarded-For entry, as behind the
      ALB, so every simulated resident has an address of its own for the login throttle;
    - REDIS_URL: the cache the workers share (throttle counters, availability), as in the pods;
    - SESSHU_WAITING_ROOM_PER_MINUTE: 0, every resident let in at once (the rush measures the
      pages), unless ``waiting_room`` asks for the waiting room at that rate;
    - the metrics server on a free loopback port, its files in a folder removed afterwards.
    """
    port = _free_port()
    scratch = Path(tempfile.mkdtemp(prefix="bench_booking_gunicorn_"))
    env = dict(
        os.environ,
        PYTHONPATH=f"{root / 'platform'}{os.pathsep}{root}",
        SESSHU_HTTPS="0",
        SESSHU_TRUSTED_PROXY_COUNT="1",
        SESSHU_METRICS_PORT=str(_free_port()),
        SESSHU_METRICS_ADDR="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(scratch / "prometheus"),
        DATABASE_POOL="1" if pool else "0",
        # Off unless asked for (``waiting_room`` a minute): the rush measures what the pages
        # serve; with it, what residents in the site see while the rest wait
        # (docs/operations.md 2.4).
        SESSHU_WAITING_ROOM_PER_MINUTE=str(waiting_room),
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    log_path = scratch / "gunicorn.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
                f"--threads={threads}",
            ],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops it in order
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        yield Gunicorn(base, process.pid, log_path)
    finally:
        _stop_process_group(process)
        shutil.rmtree(scratch, ignore_errors=True)


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """TERM to the master (it stops its workers gracefully), KILL to its group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group it leads: its workers only
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def gunicorn_errors(server: Gunicorn, limit: int = 5) -> list[str]:
    """The first error lines the application logged (500s and their tracebacks)."""
    found = []
    try:
        lines = server.log.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or "Traceback" in line:
            found.append(line[:600])
            if len(found) == limit:
                break
    return found


def redis_forget(redis_url: str, schema_name: str) -> int:
    """Delete the bench's keys from its Redis database: the municipality's (throttle
    counters, availability) and the public schema's (django-tenants prefixes every key)."""
    if not redis_url:
        return 0
    import redis

    client = redis.Redis.from_url(redis_url)
    deleted = 0
    try:
        for pattern in (f"{schema_name}:*", "public:*"):
            batch = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    deleted += client.delete(*batch)
                    batch = []
            if batch:
                deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


def probe(base_url: str, host: str, path: str) -> int:
    """The status of one GET as the municipality's host (no redirect followed)."""
    parts = urlsplit(base_url)
    client = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        client.request("GET", path, headers={"Host": host})
        return client.getresponse().status
    finally:
        client.close()


# The load generator: a process of its own (spawned, so it shares nothing with Django), with
# ``clients`` threads, each holding one keep-alive connection (as a load balancer keeps its
# pool to the pods) and playing one resident after another with a fresh cookie jar.


@dataclass
class LoadPlan:
    host: str
    port: int
    site: str
    residents: list[tuple[str, str]]  # (voucher number, birth date) in the order they come
    slot_ids: list[int]  # earliest first
    hot_share: float
    clients: int
    follow: bool  # follow the 302s to /mypage/ and the done page, as a browser does
    tries: int  # slots a resident tries before giving up
    # Every resident logs in before the rush (untimed: waiting for booking to open) and the
    # rush is the booking POSTs alone; else each logs in during the rush, then books.
    login_before: bool = False
    # Before their first booking POST each resident opens the dates page and the chosen
    # slot's day, and before each the slot's confirmation, as a resident choosing a slot does
    # (slot_days: slot id -> its day).
    choose: bool = False
    slot_days: dict[int, str] = field(default_factory=dict)


@dataclass
class HttpRushResult:
    clients: int
    workers: int
    threads: int
    follow: bool
    login_before: bool = False
    waiting_room: int = 0  # residents let in a minute (0: the waiting room off)
    redis_cut: str = ""  # how Redis went away after the logins ("refuse", "hang"), or ""
    residents: int = 0
    wall: float = 0.0
    last_booked: float = 0.0  # seconds from the start to the last successful booking
    outcomes: Counter[str] = field(default_factory=Counter)  # one per resident
    statuses: Counter[str] = field(default_factory=Counter)  # "book 409", ...
    latencies: dict[str, list[float]] = field(default_factory=dict)  # per kind of request
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0
    # Seconds each resident who met the waiting room spent in it (Refresh, then again).
    waits: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the rush
    integrity: dict[str, int] = field(default_factory=dict)
    app_errors: list[str] = field(default_factory=list)

    @property
    def booked(self) -> int:
        return self.outcomes["booked"]

    @property
    def requests(self) -> int:
        return sum(len(values) for values in self.latencies.values())


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"')
_ERROR_BOX = re.compile(r'<div class="error-box"[^>]*>\s*<p>(.*?)</p>', re.S)
FULL_MARK = "満員"  # in the service's "full" refusal, answered with a 409
# The day's slots, which the refusal carries since stop 18; before, it had a button to them.
_DAY_SLOTS = '<ul class="slots">'
_OTHER_SLOTS_BUTTON = re.compile(r'<a class="button" href="([^"]+)">この日のほかの枠を見る</a>')


class HttpError(Exception):
    pass


class Browser:
    """One keep-alive connection and the cookie jar of the resident using it now."""

    def __init__(self, plan: LoadPlan, latencies: dict[str, list[float]]) -> None:
        self.plan = plan
        self.latencies = latencies
        self.connection: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.forwarded_for = ""
        self.reconnects = 0
        self.refresh = ""  # the last answer's Refresh header (the waiting room's)

    def connect(self) -> None:
        self.connection = http.client.HTTPConnection(self.plan.host, self.plan.port, timeout=120)
        self.connection.connect()

    def next_resident(self, address: str) -> None:
        self.cookies = {}
        self.forwarded_for = address

    def request(
        self, kind: str, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """(status, Location, body); the time to the last byte is kept under ``kind``."""
        headers = {
            "Host": self.plan.site,
            "X-Forwarded-For": self.forwarded_for,
            "User-Agent": "Mozilla/5.0 (bench_booking)",
            "Accept-Language": "ja",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://{self.plan.site}"
        started = time.perf_counter()
        for again in (False, True):
            reused = self.connection is not None
            if self.connection is None:
                self.connect()
            assert self.connection is not None
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The worker closed an idle keep-alive connection (max-requests restart):
                # nothing was processed; a browser sends it again on a new connection.
                self.connection.close()
                self.connection = None
                if again or not reused:
                    raise
                self.reconnects += 1
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            if value in ("", '""') or "max-age=0" in header.lower():
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        if response.will_close:
            self.connection.close()
            self.connection = None
        self.refresh = response.getheader("Refresh") or ""
        return response.status, response.getheader("Location") or "", data.decode(errors="replace")

    def open_page(self, kind: str, path: str, waits: list[float]) -> tuple[int, str, str]:
        """GET ``path`` as a browser does, waiting in the waiting room (a 503 that names
        when to reload) for as long as it says; the time waited goes to ``waits``."""
        waited = 0.0
        while True:
            answer = self.request(kind, "GET", path)
            if answer[0] != 503 or not self.refresh:
                break
            pause = float(self.refresh)
            time.sleep(pause)
            waited += pause
        if waited:
            waits.append(waited)
        return answer


def _token(page: str) -> str:
    found = _TOKEN.search(page)
    if found is None:
        raise HttpError("no CSRF token in the page")
    return found.group(1)


def _error_text(page: str) -> str:
    found = _ERROR_BOX.search(page)
    return re.sub(r"\s+", " ", found.group(1))[:120] if found else page[:120]


def _address(index: int) -> str:
    return str(ipaddress.IPv4Address(0x0A000001 + index))


def load_generator(plan: LoadPlan, answers: Any, go: Any) -> None:
    """The load generator's process: connect every client (and, with ``login_before``, log
    every resident in), say so, wait for ``go``, rush."""
    import resource

    latencies: dict[str, list[float]] = {}
    outcomes: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    todo: queue.SimpleQueue[tuple[int, str, str]] = queue.SimpleQueue()
    for index, (number, born) in enumerate(plan.residents):
        todo.put((index, number, born))
    hot = plan.slot_ids[: max(1, int(len(plan.slot_ids) * plan.hot_share))]
    believed_open = list(plan.slot_ids)  # what the availability pages would still show
    believed_open_set = set(believed_open)
    connected = threading.Barrier(plan.clients + 1)
    start = threading.Event()
    last_booked = [0.0]
    reconnects = [0]
    waits: list[float] = []  # list.append is atomic: the clients share it
    began = [0.0]

    def choose(rng: random.Random) -> int | None:
        with lock:
            open_hot = [s for s in hot if s in believed_open_set]
            choices = open_hot or believed_open
            return rng.choice(choices) if choices else None

    def full(slot_id: int) -> None:
        with lock:
            if slot_id in believed_open_set:
                believed_open_set.discard(slot_id)
                believed_open.remove(slot_id)

    def log_in(browser: Browser, number: str, born: str) -> tuple[str, str]:
        """("", CSRF token) once logged in, else (what went wrong, "")."""
        status, _, page = browser.open_page("login page GET", "/login/", waits)
        if status != 200:
            return f"login page {status}", ""
        year, month, day = born.split("-")
        status, location, page = browser.request(
            "login POST",
            "POST",
            "/login/",
            {
                "csrfmiddlewaretoken": _token(page),
                "voucher_number": number,
                "birth_date_year": str(int(year)),
                "birth_date_month": str(int(month)),
                "birth_date_day": str(int(day)),
            },
        )
        if status != 302 or not location.endswith("/mypage/"):
            failed = (
                f"login {status}: {_error_text(page)}" if status != 302 else f"login → {location}"
            )
            return failed, ""
        if plan.follow:
            status, _, page = browser.request("mypage GET", "GET", location)
            if status != 200:
                return f"mypage {status}", ""
            return "", _token(page)
        # Without the page, the token is the cookie's secret (Django takes it unmasked).
        return "", browser.cookies["csrftoken"]

    def book(browser: Browser, rng: random.Random, token: str) -> str:
        for attempt in range(plan.tries):
            slot_id = choose(rng)
            if slot_id is None:
                return "no slot left"
            if plan.choose and attempt == 0:
                day = plan.slot_days[slot_id]
                for kind, path in (
                    ("dates page GET", "/book/"),
                    ("slots page GET", f"/book/{day}/"),
                ):
                    status, _, page = browser.request(kind, "GET", path)
                    if status != 200:
                        return f"{kind} {status}"
            if plan.choose:  # the slot's confirmation, with the button the resident presses
                status, _, page = browser.request(
                    "confirm page GET", "GET", f"/book/slot/{slot_id}/"
                )
                if status != 200:
                    return f"confirm page {status}"
                token = _token(page)
            status, location, page = browser.request(
                "booking POST", "POST", f"/book/slot/{slot_id}/", {"csrfmiddlewaretoken": token}
            )
            with lock:
                statuses[f"booking POST {status}"] += 1
            if status == 302 and location.endswith("/done/"):
                with lock:
                    last_booked[0] = max(last_booked[0], time.perf_counter() - began[0])
                if plan.follow:
                    status, _, page = browser.request("done page GET", "GET", location)
                    if status != 200:
                        return f"done page {status}"
                return "booked"
            if status == 409 and FULL_MARK in page:
                full(slot_id)
                other_slots = _OTHER_SLOTS_BUTTON.search(page)
                if other_slots is not None and _DAY_SLOTS not in page:
                    # A refusal without the day's slots on it: a resident opens them (its
                    # button) to choose another, and that page is part of their rush too.
                    path = html.unescape(other_slots.group(1))
                    status, _, page = browser.request("slots page GET", "GET", path)
                    if status != 200:
                        return f"slots page {status}"
                token = _token(page)
                continue
            return f"booking {status}: {_error_text(page)}"
        return f"full {plan.tries} times"

    def resident(browser: Browser, rng: random.Random, number: str, born: str) -> str:
        failed, token = log_in(browser, number, born)
        return failed or book(browser, rng, token)

    # Residents logged in before the rush: (index, cookies, address, token), or what failed.
    waiting: queue.SimpleQueue[tuple[int, dict[str, str], str, str]] = queue.SimpleQueue()
    refused_before: Counter[str] = Counter()

    def log_in_before(browser: Browser) -> None:
        untimed: dict[str, list[float]] = {}
        timed, browser.latencies = browser.latencies, untimed
        try:
            while True:
                try:
                    index, number, born = todo.get_nowait()
                except queue.Empty:
                    return
                browser.next_resident(_address(index))
                failed, token = log_in(browser, number, born)
                if failed:
                    with lock:
                        refused_before[failed[:80]] += 1
                else:
                    waiting.put((index, dict(browser.cookies), browser.forwarded_for, token))
        finally:
            browser.latencies = timed

    def client(seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311
        mine: dict[str, list[float]] = {}
        browser = Browser(plan, mine)
        counted: Counter[str] = Counter()
        try:
            browser.connect()
            if plan.login_before:
                log_in_before(browser)
        finally:
            connected.wait()
        start.wait()
        while True:
            try:
                if plan.login_before:
                    index, cookies, address, token = waiting.get_nowait()
                    browser.cookies, browser.forwarded_for = cookies, address
                else:
                    index, number, born = todo.get_nowait()
                    # One address per resident: 10.0.0.1, 10.0.0.2, ... (the ALB appends it).
                    browser.next_resident(_address(index))
            except queue.Empty:
                break
            try:
                if plan.login_before:
                    outcome = book(browser, rng, token)
                else:
                    outcome = resident(browser, rng, number, born)
            except Exception as exc:  # counted and shown, never hidden
                outcome = f"{type(exc).__name__}"
                with lock:
                    if len(errors) < 5:
                        errors.append(f"{type(exc).__name__}: {exc}")
                if browser.connection is not None:
                    browser.connection.close()
                    browser.connection = None
            counted[outcome if len(outcome) < 80 else outcome[:80]] += 1
        with lock:
            outcomes.update(counted)
            reconnects[0] += browser.reconnects
            for kind, values in mine.items():
                latencies.setdefault(kind, []).extend(values)

    pool = [threading.Thread(target=client, args=(i,)) for i in range(plan.clients)]
    for thread in pool:
        thread.start()
    connected.wait()
    answers.put("ready")
    go.wait()
    before = resource.getrusage(resource.RUSAGE_SELF)
    began[0] = time.perf_counter()
    start.set()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - began[0]
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    outcomes.update({f"before the rush: {failed}": n for failed, n in refused_before.items()})
    answers.put(
        {
            "wall": wall,
            "last_booked": last_booked[0],
            "outcomes": outcomes,
            "statuses": statuses,
            "latencies": latencies,
            "errors": errors,
            "reconnects": reconnects[0],
            "waits": waits,
            "cpu": cpu,
        }
    )


# --- CPU accounting (Linux /proc): who used the two cores during the rush ---


def _ticks_to_seconds(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def _process_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # from the state on: [0] state, [1] ppid, ...


def _process_cpu(pid: int, *, with_children: bool = False) -> float:
    fields = _process_stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_children:
        ticks += int(fields[13]) + int(fields[14])  # of children it waited for (old workers)
    return _ticks_to_seconds(ticks)


def gunicorn_cpu(master: int) -> float:
    """The master, its live workers, and the workers it already reaped (max-requests)."""
    total = _process_cpu(master, with_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _process_stat(int(entry.name))
            if fields is not None and fields[1] == str(master):
                total += _process_cpu(int(entry.name))
    return total


def postgres_backends_cpu(admin_url: str, database: str) -> dict[int, float]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
            ).fetchall()
        ]
    return {pid: _process_cpu(pid) for pid in pids}


def machine_busy_seconds() -> float:
    """CPU seconds every core spent on anything but idle or waiting for I/O, since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return _ticks_to_seconds(sum(values) - values[3] - values[4])
