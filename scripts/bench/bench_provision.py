"""Provisioning as the platform grows: one more municipality, and a no-op migrate_schemas.

    cd /work/main && .venv/bin/python scripts/bench/bench_provision.py \\
        [--sizes 1,100,300] [--samples 3] [--migrate-samples 1] \\
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--app-role sesshu] \\
        [--migrate-retries 2] [--database bench_provision] [--tree HEAD|<commit>|live|<dir>] \
        [--profile] [--keep]

Run on purpose, never by the test suite. It works in a database of its own (``--database``,
which must start with ``bench_``), created from scratch with a superuser's URL the way the
operator does it (tenants.db.bootstrap), migrated with ``manage.py migrate_schemas --shared``
in owner mode, and dropped together with its tenant roles at the end.

For each size N (number of existing municipalities) it measures:

(a) provisioning one more municipality through the real service
    ``tenants.services.municipality_provision`` (schema + migrations + role + data key +
    domain + first-admin invitation), in this process, as the control plane does it. Each
    sample is taken with exactly N municipalities present: it is decommissioned through
    ``municipality_decommission`` and its row removed right after it is timed. Reported: the
    median of ``--samples`` of the wall time, of this process's CPU time, and of the number
    of SQL statements the service sent and the time spent in them.
(b) ``manage.py migrate_schemas`` over the public schema and every municipality, as a no-op
    (a run that applies anything stops the benchmark), in a subprocess: the standard
    executor, and ``--executor=multiprocessing`` (django-tenants' default of 2 processes).
    Reported: median wall and CPU time of ``--migrate-samples`` successful runs; a failed run
    is counted, shown with its error, and retried up to ``--migrate-retries`` times.

Ratios are against the smallest size measured in the same run. On a shared machine the wall
times move with other work: the 1-minute load average is printed next to each size, and the
CPU columns are the figures other processes disturb least. The municipalities come from
the national list (tenants/data/municipalities.csv) in its order; subdomains are ``b<code>``.
The local key provider is used with a random master key made for the run.

The code measured is a commit (``--tree``, default HEAD) exported to a temporary folder, so
work in progress in the shared tree cannot change it halfway; ``--tree live`` measures the
working tree instead, and ``--tree <dir>`` a copy of the project in a folder (to measure a
proposed change without committing it). ``--profile`` adds a cProfile of one provisioning at
the largest size; ``--keep`` leaves the database, its roles and the export for inspection
(drop them with tenants.db.bootstrap.drop_database and drop_database_roles).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
# The tree under test: a snapshot of a commit (default) or the working tree (--tree live).
# Set by use_tree() before anything of the project is imported.
ROOT = REPO
EXPORTED = False  # ROOT is a temporary export of a commit, removed at the end


STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", flush=True)


def app_url(admin_url: str, *, role: str, database: str) -> str:
    """The application's URL for ``database``: the admin URL's host, port and query, as ``role``."""
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(role)}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + quote(database), parts.query, ""))


def use_tree(revision: str) -> str:
    """Export `revision` into a temporary folder (or take the working tree); describe it.

    A shared working tree changes under a run of several minutes (a new migration makes the
    "no-op" migrate apply it halfway through); a snapshot of a commit does not.
    """
    global ROOT, EXPORTED
    if "/" in revision and Path(revision).is_dir():
        ROOT = Path(revision).resolve()
        description = f"folder {ROOT}"
    elif revision == "live":
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout
        head = _git("rev-parse", "--short", "HEAD")
        description = f"working tree at {head}" + (" with local changes" if status.strip() else "")
    else:
        commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}")
        ROOT = Path(tempfile.mkdtemp(prefix="bench_provision_"))
        EXPORTED = True
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(ROOT)], input=archive, check=True)
        description = f"commit {commit[:12]} exported to {ROOT}"
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    return description


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def configure_environment(args: argparse.Namespace, database_url: str) -> None:
    """Everything settings.py reads that matters here, before Django is imported.

    Nothing is inherited that could reach another database, a real KMS key, a broker or Sentry.
    Owner mode is *not* set for this process: like the control plane, the service asks for it
    where it needs it. The manage.py subprocesses get it (see child_env).
    """
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
    for name in (
        "SESSHU_DB_OWNER_MODE",
        "DATABASE_POOL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "SENTRY_DSN",
        "AWS_STORAGE_BUCKET_NAME",
        "SESSHU_TESTING",
    ):
        os.environ.pop(name, None)


def child_env() -> dict[str, str]:
    return dict(os.environ, SESSHU_DB_OWNER_MODE="1")


class ManageFailed(Exception):
    """manage.py exited with an error; the message is the last line it printed."""

    def __init__(self, message: str, seconds: float, output: str) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.output = output


def manage(*arguments: str, check_noop: bool = False) -> float:
    """Run manage.py in owner mode; return its wall time or raise ManageFailed."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *arguments],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
        last = lines[-1] if lines else f"exit status {result.returncode}"
        raise ManageFailed(last, elapsed, result.stdout[-3000:] + result.stderr[-6000:])
    applied = [line for line in result.stdout.splitlines() if "Applying " in line]
    if check_noop and applied:
        sys.stderr.write("\n".join(applied[:10]) + "\n")
        raise SystemExit(
            f"manage.py {' '.join(arguments)} applied migrations; it must be a no-op here "
            "(did the tree change during the run? use --tree HEAD)"
        )
    return elapsed


@dataclass
class SqlCounter:
    """Statements and time spent in them, for everything Django sends on `connection`."""

    statements: int = 0
    seconds: float = 0.0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.statements += 1


@dataclass
class MigrateRuns:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system of manage.py and its workers
    failures: list[str] = field(default_factory=list)


@dataclass
class SizeResult:
    size: int
    provision: list[float] = field(default_factory=list)
    provision_cpu: list[float] = field(default_factory=list)  # this process, user + system
    statements: list[int] = field(default_factory=list)
    sql_seconds: list[float] = field(default_factory=list)
    standard: MigrateRuns = field(default_factory=MigrateRuns)
    multiprocessing: MigrateRuns = field(default_factory=MigrateRuns)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    pg_class: int = 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 1,100,300")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1,100,300"))
    parser.add_argument("--samples", type=int, default=3, help="provisionings per size")
    parser.add_argument("--migrate-samples", type=int, default=1, help="runs per executor/size")
    parser.add_argument(
        "--migrate-retries",
        type=int,
        default=2,
        help="extra attempts when a migrate_schemas run fails (failures are counted and shown)",
    )
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="a superuser"
    )
    parser.add_argument("--app-role", default="sesshu")
    parser.add_argument("--database", default="bench_provision")
    parser.add_argument(
        "--tree",
        default="HEAD",
        help="commit to benchmark (exported to a temporary folder), 'live' for the working "
        "tree as it is, or a path to a folder holding a copy of the project",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one extra provisioning at the largest size"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the database and its roles for inspection"
    )
    args = parser.parse_args()
    if not args.database.startswith("bench_"):
        parser.error("--database must start with bench_ (it is dropped and re-created)")
    if args.samples < 1 or args.migrate_samples < 0:
        parser.error("--samples must be at least 1, --migrate-samples at least 0")

    wall_started = time.perf_counter()
    tree = use_tree(args.tree)
    try:
        outcome = benchmark(args, tree)
    finally:
        if EXPORTED and not args.keep:
            shutil.rmtree(ROOT, ignore_errors=True)
    report(args, tree, *outcome, time.perf_counter() - wall_started)


def benchmark(
    args: argparse.Namespace, tree: str
) -> tuple[list[SizeResult], list[float], dict[str, int], str]:
    database_url = app_url(args.admin_url, role=args.app_role, database=args.database)
    configure_environment(args, database_url)
    log(f"code under test: {tree}")

    from tenants.db import bootstrap

    log(f"database {args.database} (dropped and re-created), app role {args.app_role}")
    bootstrap.bootstrap_cluster(args.admin_url, app_role=args.app_role)
    bootstrap.create_database(
        args.admin_url, database=args.database, app_role=args.app_role, drop=True
    )
    bootstrap.drop_database_roles(args.admin_url, database=args.database)
    try:
        bootstrap.bootstrap_database(args.admin_url, database=args.database, app_role=args.app_role)
        try:
            seconds = manage("migrate_schemas", "--shared", "--noinput")
        except ManageFailed as exc:
            sys.stderr.write(exc.output)
            raise SystemExit(f"migrate_schemas --shared failed: {exc}") from None
        log(f"migrate_schemas --shared: {seconds:.1f} s")
        results, fill_times, profile_text = run(args)
        catalog = catalog_figures(args.admin_url, args.database)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if args.keep:
            log(f"kept database {args.database} (DATABASE_URL={database_url}) and tree {ROOT}")
        else:
            bootstrap.drop_database(args.admin_url, database=args.database)
            bootstrap.drop_database_roles(args.admin_url, database=args.database)
            log(f"dropped database {args.database} and its roles")
    return results, fill_times, catalog, profile_text


def run(args: argparse.Namespace) -> tuple[list[SizeResult], list[float], str]:
    import django

    django.setup()

    from django.db import connection

    from audit.chain import Actor
    from tenants.codes import reference_municipalities
    from tenants.db.roles import owner_mode
    from tenants.models import Municipality
    from tenants.services import municipality_decommission, municipality_provision

    actor = Actor.system("bench_provision")
    national: Iterator[Any] = iter(reference_municipalities().values())
    needed = args.sizes[-1] + args.samples * len(args.sizes) + (1 if args.profile else 0)
    if needed > len(reference_municipalities()):
        raise SystemExit(f"the national list has {len(reference_municipalities())} codes")

    def provision() -> tuple[float, float, SqlCounter, Municipality]:
        reference = next(national)
        counter = SqlCounter()
        with connection.execute_wrapper(counter):
            cpu = time.process_time()
            started = time.perf_counter()
            result = municipality_provision(
                code=reference.code,
                subdomain=f"b{reference.code}",
                admin_email=f"admin@b{reference.code}.example.jp",
                actor=actor,
            )
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
        connection.set_schema_to_public()
        return elapsed, cpu, counter, result.municipality

    def remove(municipality: Municipality) -> None:
        municipality_decommission(
            municipality=municipality, confirmation=municipality.code, actor=actor
        )
        with owner_mode():
            Municipality.objects.filter(pk=municipality.pk).delete()
        connection.set_schema_to_public()

    results: list[SizeResult] = []
    fill_times: list[float] = []
    count = 0
    profile_text = ""
    for size in args.sizes:
        log(f"growing to {size} municipalities")
        batch: list[float] = []
        while count < size:
            elapsed, _, _, _ = provision()
            count += 1
            fill_times.append(elapsed)
            batch.append(elapsed)
            if count % 25 == 0 or count == size:
                log(
                    f"  {count:>4}/{size} provisioned; last {len(batch)}: "
                    f"mean {statistics.fmean(batch):.3f} s, max {max(batch):.3f} s"
                )
                batch = []
        assert Municipality.objects.count() == size
        result = SizeResult(size)
        load_before = os.getloadavg()[0]
        for sample in range(args.samples):
            elapsed, cpu, counter, municipality = provision()
            result.provision.append(elapsed)
            result.provision_cpu.append(cpu)
            result.statements.append(counter.statements)
            result.sql_seconds.append(counter.seconds)
            log(
                f"  N={size}: provision sample {sample + 1}/{args.samples}: {elapsed:.3f} s "
                f"(CPU here {cpu:.3f} s; {counter.statements} SQL statements, "
                f"{counter.seconds:.3f} s in them)"
            )
            remove(municipality)
        assert Municipality.objects.count() == size
        if args.profile and size == args.sizes[-1]:
            profile_text = profile_one(provision, remove)
        connection.close()  # the subprocesses must not wait on this session's locks
        for label, extra, runs in (
            ("standard", (), result.standard),
            ("multiprocessing, 2", ("--executor=multiprocessing",), result.multiprocessing),
        ):
            attempts = 0
            while len(runs.wall) < args.migrate_samples and attempts < (
                args.migrate_samples + args.migrate_retries
            ):
                attempts += 1
                cpu = children_cpu()
                try:
                    seconds = manage("migrate_schemas", "--noinput", *extra, check_noop=True)
                except ManageFailed as exc:
                    runs.failures.append(str(exc))
                    log(f"  N={size}: migrate_schemas ({label}) FAILED: {exc}")
                    continue
                runs.wall.append(seconds)
                runs.cpu.append(children_cpu() - cpu)
                log(
                    f"  N={size}: migrate_schemas ({label}) no-op: {seconds:.1f} s "
                    f"(CPU of manage.py and workers {runs.cpu[-1]:.1f} s)"
                )
        result.load = (load_before, os.getloadavg()[0])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_catalog.pg_class")
            result.pg_class = cursor.fetchone()[0]
        results.append(result)
    return results, fill_times, profile_text


def profile_one(
    provision: Callable[[], tuple[float, float, SqlCounter, Any]], remove: Callable[[Any], None]
) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, _, counter, municipality = provision()
    profiler.disable()
    remove(municipality)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)
    header = f"profiled provisioning: {elapsed:.3f} s, {counter.statements} SQL statements\n"
    return header + out.getvalue()


def catalog_figures(admin_url: str, database: str) -> dict[str, int]:
    import psycopg

    from tenants.db.bootstrap import role_prefix

    dsn = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM pg_catalog.pg_class),
                   (SELECT count(*) FROM pg_catalog.pg_namespace),
                   (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                      FROM pg_catalog.pg_class c
                      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r'),
                   pg_database_size(current_database()),
                   (SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname LIKE %s),
                   (SELECT coalesce(array_length(nspacl, 1), 0)
                      FROM pg_catalog.pg_namespace WHERE nspname = 'public')
            """,
            [role_prefix(database).replace("_", r"\_") + "%"],
        ).fetchone()
    assert row is not None
    keys = (
        "pg_class",
        "pg_namespace",
        "catalog_bytes",
        "database_bytes",
        "tenant_roles",
        "public_acl",
    )
    return dict(zip(keys, row, strict=True))


def report(
    args: argparse.Namespace,
    tree: str,
    results: list[SizeResult],
    fill_times: list[float],
    catalog: dict[str, int],
    profile_text: str,
    wall: float,
) -> None:
    base = results[0]

    def secs(values: list[float], width: int, digits: int) -> str:
        return f"{median(values):>{width - 2}.{digits}f} s" if values else f"{'FAILED':>{width}}"

    def ratio(values: list[float], reference: list[float]) -> str:
        if not values or not reference:
            return f"{'-':>6}"
        return f"{'×' + format(median(values) / median(reference), '.2f'):>6}"

    print()
    print("Command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"Code: {tree}. {os.cpu_count()} CPUs; Python {sys.version.split()[0]}.")
    print(
        f"(a) one more municipality through municipality_provision, in-process; median of "
        f"{args.samples}. 'CPU' is this process's user+system time; 'SQL' is the wall time "
        "spent in the statements the service sent."
    )
    header = (
        f"{'N':>5} | {'wall':>9} | {'ratio':>6} | {'CPU':>9} | {'ratio':>6} | "
        f"{'SQL stmts':>9} | {'SQL':>9} | {'ratio':>6} | {'load 1m':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.size:>5} | {secs(r.provision, 9, 3)} | {ratio(r.provision, base.provision)} | "
            f"{secs(r.provision_cpu, 9, 3)} | {ratio(r.provision_cpu, base.provision_cpu)} | "
            f"{median(r.statements):>9.0f} | {secs(r.sql_seconds, 9, 3)} | "
            f"{ratio(r.sql_seconds, base.sql_seconds)} | "
            f"{r.load[0]:>4.1f} → {r.load[1]:>4.1f}"
        )
    print()
    print(
        f"(b) manage.py migrate_schemas over public + N municipalities, no-op, in a subprocess; "
        f"median of {args.migrate_samples} successful run(s). 'CPU' is user+system of manage.py "
        "and its workers; 'failed' counts failed runs."
    )
    header = (
        f"{'N':>5} | {'standard':>9} | {'ratio':>6} | {'CPU':>7} | {'failed':>6} | "
        f"{'multiproc.2':>11} | {'ratio':>6} | {'CPU':>7} | {'failed':>6} | {'pg_class':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        st, mp = r.standard, r.multiprocessing
        print(
            f"{r.size:>5} | {secs(st.wall, 9, 1)} | {ratio(st.wall, base.standard.wall)} | "
            f"{secs(st.cpu, 7, 1)} | {len(st.failures)}/{len(st.wall) + len(st.failures):<4} | "
            f"{secs(mp.wall, 11, 1)} | {ratio(mp.wall, base.multiprocessing.wall)} | "
            f"{secs(mp.cpu, 7, 1)} | {len(mp.failures)}/{len(mp.wall) + len(mp.failures):<4} | "
            f"{r.pg_class:>8}"
        )
    print()
    print(
        "provision samples (s): "
        + "; ".join(f"N={r.size}: " + ", ".join(f"{v:.3f}" for v in r.provision) for r in results)
    )
    last = results[-1]
    if len(results) > 1:
        for label, base_runs, last_runs in (
            ("standard", base.standard.wall, last.standard.wall),
            ("multiprocessing", base.multiprocessing.wall, last.multiprocessing.wall),
        ):
            if base_runs and last_runs:
                per = (median(last_runs) - median(base_runs)) / (last.size - base.size)
                print(
                    f"migrate_schemas {label}: {per * 1000:.0f} ms per additional municipality "
                    f"between N={base.size} and N={last.size}"
                )
    errors = sorted(
        {
            f"{kind}: {error}"
            for r in results
            for kind, runs in (("standard", r.standard), ("multiprocessing", r.multiprocessing))
            for error in runs.failures
        }
    )
    for error in errors:
        print(f"migrate_schemas failure seen: {error}")
    if fill_times:
        blocks = range(0, len(fill_times), 50)
        print(
            "provisionings while growing, mean per block of 50 (s): "
            + ", ".join(
                f"{i + 1}-{min(i + 50, len(fill_times))}: "
                f"{statistics.fmean(fill_times[i : i + 50]):.3f}"
                for i in blocks
            )
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {own:.0f} MiB; largest manage.py subprocess {children:.0f} MiB")
    print(
        f"at the end: pg_class {catalog['pg_class']} rows, pg_namespace {catalog['pg_namespace']}, "
        f"pg_catalog tables {catalog['catalog_bytes'] / 2**20:.1f} MiB, database "
        f"{catalog['database_bytes'] / 2**20:.1f} MiB, this database's roles "
        f"{catalog['tenant_roles']}, ACL entries on schema public {catalog['public_acl']}"
    )
    print(f"wall time: {wall:.0f} s")
    if profile_text:
        print()
        print(profile_text)


if __name__ == "__main__":
    main()
