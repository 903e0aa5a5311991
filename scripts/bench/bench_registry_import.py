"""A million-row voucher registry: the import's rate against PostgreSQL's own COPY.

    cd /work/main && .venv/bin/python scripts/bench/bench_registry_import.py \\
        [--rows 1000000] [--small 250000] [--processes 2] [--bad-percent 2] \\
        [--login-mode voucher_dob|voucher_code] [--downloads] \\
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--app-role sesshu]

Run on purpose, never by the test suite. It makes a realistic CP932 registry with
scripts/gen_registry.py (mixed Western and era dates, full-width digits, ~2 % bad rows) and
works in a database of its own (``bench_registry``), created and dropped with a superuser's
URL the way the operator does it.

Measured in the same run, each in a fresh process so its peak memory is its own:
- baseline: ``COPY … FROM STDIN (FORMAT csv, HEADER, ENCODING 'SJIS')`` of the same file into
  a plain table of text columns — PostgreSQL reading, converting and storing the rows;
- the import: the real service, preview (parse, validate, seal, index, COPY into staging,
  duplicates and counts in SQL) then apply (batched upserts), in ``voucher_dob`` mode;
- the same import of a smaller file (``--small``), to show that peak memory does not grow
  with the file.
- with ``--downloads`` (``voucher_code`` mode), after the large import: its activation codes
  file downloaded to the end, then the access report of the hour, which names every voucher
  in that file — each timed, with the peak memory of a fresh process.
Reported: rows/s, the ratio to COPY's rate, and peak RSS of the process and its workers; where
the preview's time goes (the file streamed through the parsing workers into the staging
table — with who used the CPU meanwhile — then duplicates, counts and the error file).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "bench_registry"
CODES = ("132110", "131016")


def _env(admin_url: str, app_role: str, processes: int) -> dict[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5432
    return {
        **os.environ,
        "DATABASE_URL": f"postgresql://{app_role}@{host}:{port}/{DATABASE}",
        "DATABASE_ADMIN_URL": admin_url,
        "DJANGO_SETTINGS_MODULE": "sesshu.settings",
        # As in production: DEBUG would also keep every statement (with its parameters, a
        # batch's arrays of 50,000 values among them) in memory.
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "SESSHU_LOCAL_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SESSHU_VAR_DIR": str(ROOT / "var" / "bench"),
        "SESSHU_REGISTRY_PROCESSES": str(processes),
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
    }


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, _DESCENDANTS_PEAK_MB[0]


# The parsing workers are children of multiprocessing's fork server, not of this process, so
# getrusage(RUSAGE_CHILDREN) never sees them: sample every descendant's RSS from /proc.
_DESCENDANTS_PEAK_MB = [0.0]


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _sample_descendants(stop: threading.Event) -> None:
    while not stop.wait(0.5):
        total_kb = 0
        for pid in _descendants(os.getpid()):
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
            except OSError:
                continue
        _DESCENDANTS_PEAK_MB[0] = max(_DESCENDANTS_PEAK_MB[0], total_kb / 1024)


def child_copy(path: Path) -> dict[str, object]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(
        os.environ["DATABASE_ADMIN_URL"], dbname=DATABASE, autocommit=True
    ) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_baseline")
        conn.execute(
            "CREATE TABLE copy_baseline (voucher_number text, address_number text, name text,"
            " name_kana text, birth_date text, sex text, postal_code text, address text,"
            " phone text, email text, dose text)"
        )
        started = time.perf_counter()
        with conn.cursor() as cursor, path.open("rb") as stream:
            with cursor.copy(
                "COPY copy_baseline FROM STDIN (FORMAT csv, HEADER true, ENCODING 'SJIS')"
            ) as copy:
                while block := stream.read(1024 * 1024):
                    copy.write(block)
        seconds = time.perf_counter() - started
        (rows,) = conn.execute("SELECT count(*) FROM copy_baseline").fetchone()
        conn.execute("DROP TABLE copy_baseline")
    own, children = _peak_rss_mb()
    return {"rows": rows, "seconds": seconds, "rss_mb": own, "children_rss_mb": children}


def _error_file_rows(registry_import: Any, actor: Any) -> int:
    """The rows of the error file as downloaded (its header not counted), after the peak
    memory was read: one per invalid line, or the import lost some."""
    import csv
    import io

    from booking.registry.csvfile import resolve_encoding
    from booking.services.registry_import import registry_import_error_file

    if not registry_import.error_file:
        return 0
    _name, content = registry_import_error_file(registry_import=registry_import, actor=actor)
    text = b"".join(content).decode(resolve_encoding(registry_import.detected_encoding))
    return sum(1 for _row in csv.reader(io.StringIO(text, newline=""))) - 1


def child_import(path: Path, code: str) -> dict[str, object]:
    import django

    django.setup()
    from django_tenants.utils import tenant_context

    from audit.chain import Actor
    from booking.models import RegistryImport, Voucher
    from booking.services.registry_import import (
        registry_import_apply,
        registry_import_confirm,
        registry_import_parse,
        registry_import_upload,
    )
    from tenants.models import Municipality

    municipality = Municipality.objects.get(code=code)
    actor = Actor.system("bench")
    breakdown = _preview_breakdown()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_descendants, args=(stop,), daemon=True)
    sampler.start()
    with tenant_context(municipality):
        started = time.perf_counter()
        with path.open("rb") as stream:
            registry_import = registry_import_upload(
                stream=stream,
                file_name=path.name,
                size=path.stat().st_size,
                actor=actor,
                source=RegistryImport.Source.COMMAND,
                enqueue=False,
            )
        uploaded = time.perf_counter()
        registry_import_parse(registry_import_id=registry_import.pk)
        parsed = time.perf_counter()
        registry_import.refresh_from_db()
        registry_import_confirm(registry_import=registry_import, actor=actor, enqueue=False)
        apply_cpu = time.process_time()
        registry_import_apply(registry_import_id=registry_import.pk)
        applied = time.perf_counter()
        apply_cpu = time.process_time() - apply_cpu
        registry_import.refresh_from_db()
        vouchers = Voucher.objects.count()
    stop.set()
    own, children = _peak_rss_mb()
    with tenant_context(municipality):
        error_rows = _error_file_rows(registry_import, actor)
    return {
        "rows": registry_import.rows_total,
        "counts": registry_import.counts,
        "vouchers": vouchers,
        "error_file_rows": error_rows,
        "upload_seconds": uploaded - started,
        "parse_seconds": parsed - uploaded,
        "apply_seconds": applied - parsed,
        # This process's CPU in the apply, its batch threads included (the database's is not).
        "apply_python_cpu": apply_cpu,
        "seconds": applied - started,
        "rss_mb": own,
        "children_rss_mb": children,
        "preview_breakdown": breakdown,
    }


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_seconds() -> tuple[float, float]:
    """CPU seconds of the whole machine since boot: (all, idle and waiting)."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return sum(values) / tick, (values[3] + values[4]) / tick


def _preview_breakdown() -> dict[str, float]:
    """Wrap the preview's steps to time them, and measure who used the CPU while the file
    streamed through the parsing workers into the staging table: the machine as a whole,
    this process, and its database backend (the workers are the rest)."""
    from django.db import connection

    from booking.services.registry_import import preview

    times: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    # The preview module's own names for them (what it imported is what it calls).
    for name, label in (
        ("_mark_duplicates", "mark_duplicates"),
        ("preview_counts", "preview_counts"),
        ("_write_error_file", "write_error_file"),
    ):
        setattr(preview, name, timed(label, getattr(preview, name)))
    results = preview._results

    def streamed(*args: Any, **kwargs: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        backend_before, own_before = _cpu_seconds(backend), time.process_time()
        (all_before, idle_before), started = _machine_seconds(), time.perf_counter()
        yield from results(*args, **kwargs)
        all_after, idle_after = _machine_seconds()
        times["stream"] = time.perf_counter() - started
        times["stream_machine_cpu"] = all_after - all_before
        times["stream_busy_cpu"] = (all_after - all_before) - (idle_after - idle_before)
        times["stream_backend_cpu"] = _cpu_seconds(backend) - backend_before
        times["stream_parent_cpu"] = time.process_time() - own_before

    preview._results = streamed
    return times


def child_downloads(code: str) -> dict[str, object]:
    """In a fresh process (its peak memory its own): the activation codes download of the
    last import, read to the end, then the access report of the last hour, which names every
    voucher in that download."""
    import django

    django.setup()
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from audit.chain import Actor
    from booking.models import RegistryImport, StaffMember
    from booking.services.incident import trail_report_build
    from booking.services.registry_import import registry_import_codes_file
    from tenants.models import Municipality

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, object] = {"baseline_rss_mb": baseline}
    with tenant_context(Municipality.objects.get(code=code)):
        registry_import = RegistryImport.objects.exclude(codes_file="").latest("pk")
        started = time.perf_counter()
        _name, content = registry_import_codes_file(
            registry_import=registry_import, actor=Actor.system("bench")
        )
        first_byte = time.perf_counter() - started
        # Older trees returned the whole file as bytes.
        size = len(content) if isinstance(content, bytes) else sum(len(part) for part in content)
        result["codes"] = {
            "bytes": size,
            "first_byte_seconds": first_byte,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        staff = StaffMember(role=StaffMember.Role.AUDITOR, user_id=1)
        started = time.perf_counter()
        report = trail_report_build(
            staff=staff,
            start=timezone.now() - timedelta(hours=1),
            end=timezone.now() + timedelta(minutes=1),
            ip=None,
        )
        rows = report.rows if isinstance(report.rows, int) else len(report.rows)
        result["report"] = {
            "rows": rows,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    return result


def _child(kind: str, path: Path, env: dict[str, str], code: str = "") -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--file", str(path), "--code", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{kind} run failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _registry(rows: int, bad_percent: float) -> Path:
    suffix = "" if bad_percent == 2 else f"-bad{bad_percent:g}"
    path = ROOT / "var" / "bench" / f"registry-{rows}{suffix}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {rows:,} rows into {path}", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "gen_registry.py"),
                "--rows",
                str(rows),
                "--out",
                str(path),
                "--seed",
                "1",
                "--bad-percent",
                str(bad_percent),
            ],
            check=True,
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=250_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--bad-percent",
        type=float,
        default=2,
        help="share of invalid rows (100: every row invalid, an error file as large as the file)",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--app-role", default="sesshu")
    parser.add_argument(
        "--login-mode",
        choices=["voucher_dob", "voucher_code"],
        default="voucher_dob",
        help="voucher_code: the apply also issues an activation code per new voucher",
    )
    parser.add_argument(
        "--downloads",
        action="store_true",
        help="with --login-mode voucher_code: then time the codes download and the access"
        " report naming its vouchers, each with its peak memory",
    )
    parser.add_argument("--child", choices=["copy", "import", "downloads"])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--code", default="")
    args = parser.parse_args()
    if args.child:
        if args.child == "copy":
            result = child_copy(args.file)
        elif args.child == "downloads":
            result = child_downloads(args.code)
        else:
            result = child_import(args.file, args.code)
        print(json.dumps(result, default=str))
        return

    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    from tenants.db import bootstrap

    env = _env(args.admin_url, args.app_role, args.processes)
    big, small = _registry(args.rows, args.bad_percent), _registry(args.small, args.bad_percent)
    print(f"database {DATABASE}: creating", flush=True)
    bootstrap.bootstrap_cluster(args.admin_url, app_role=args.app_role)
    bootstrap.create_database(args.admin_url, database=DATABASE, app_role=args.app_role, drop=True)
    bootstrap.drop_database_roles(args.admin_url, database=DATABASE)
    bootstrap.bootstrap_database(args.admin_url, database=DATABASE, app_role=args.app_role)
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run(
            [*manage, "migrate_schemas", "--shared", "-v0"], env=env, cwd=ROOT, check=True
        )
        for code in CODES:  # each import into a municipality of its own, from empty
            provision = ["tenant_provision", "--code", code, "--subdomain", f"b{code}"]
            subprocess.run(
                [
                    *manage,
                    *provision,
                    "--admin-email",
                    "bench@example.jp",
                    "--login-mode",
                    args.login_mode,
                ],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        print("COPY baseline …", flush=True)
        copy = _child("copy", big, env)
        print(f"import of {args.rows:,} rows with {args.processes} processes …", flush=True)
        full = _child("import", big, env, CODES[0])
        downloads = None
        if args.downloads and args.login_mode == "voucher_code":
            print("codes download and access report …", flush=True)
            downloads = _child("downloads", big, env, CODES[0])
        print(f"import of {args.small:,} rows …", flush=True)
        part = _child("import", small, env, CODES[1])
    finally:
        bootstrap.drop_database(args.admin_url, database=DATABASE)
        bootstrap.drop_database_roles(args.admin_url, database=DATABASE)

    copy_rate = copy["rows"] / copy["seconds"]
    rate = full["rows"] / full["seconds"]
    print()
    print(f"{'':28}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>14}")
    print(
        f"{'COPY (baseline)':28}{copy['rows']:>10,}{copy['seconds']:>10.2f}{copy_rate:>12,.0f}"
        f"{copy['rss_mb']:>14.0f}"
    )
    for label, result in ((f"import {args.rows:,}", full), (f"import {args.small:,}", part)):
        peak = max(result["rss_mb"], result["children_rss_mb"])
        print(
            f"{label:28}{result['rows']:>10,}{result['seconds']:>10.2f}"
            f"{result['rows'] / result['seconds']:>12,.0f}{peak:>14.0f}"
        )
    print()
    print(f"import / COPY rate: {rate / copy_rate:.3f}  (goal ≥ 0.100)")
    print(
        f"phases ({args.rows:,}): upload {full['upload_seconds']:.1f} s, preview "
        f"{full['parse_seconds']:.1f} s, apply {full['apply_seconds']:.1f} s (Python CPU in it"
        f" {full.get('apply_python_cpu', 0.0):.1f} s)"
    )
    parts = full.get("preview_breakdown") or {}
    if parts:
        print(
            f"preview ({args.rows:,}): stream {parts['stream']:.1f} s (CPU busy"
            f" {parts['stream_busy_cpu']:.1f} of {parts['stream_machine_cpu']:.1f} core-s;"
            f" database backend {parts['stream_backend_cpu']:.1f}, this process"
            f" {parts['stream_parent_cpu']:.1f}, parsing workers the rest), duplicates"
            f" {parts['mark_duplicates']:.1f} s, counts {parts['preview_counts']:.1f} s,"
            f" error file {parts['write_error_file']:.1f} s"
        )
    print(f"counts: {full['counts']}; vouchers stored: {full['vouchers']:,}")
    invalid = int(full["counts"].get("invalid", 0))
    print(
        f"error file: {full['error_file_rows']:,} rows for {invalid:,} invalid lines"
        + ("" if full["error_file_rows"] == invalid else "  << MISMATCH: rows lost or added")
    )
    if downloads:
        codes, report, base = downloads["codes"], downloads["report"], downloads["baseline_rss_mb"]
        print(
            f"codes download: {codes['bytes'] / 1e6:.1f} MB, first byte after"
            f" {codes['first_byte_seconds']:.2f} s, all in {codes['seconds']:.2f} s, peak RSS"
            f" +{codes['peak_rss_mb'] - base:.0f} MB; access report: {report['rows']:,} rows in"
            f" {report['seconds']:.2f} s, peak RSS +{report['peak_rss_mb'] - base:.0f} MB"
            f" (from {base:.0f} MB)"
        )
    print(
        f"peak RSS: main {full['rss_mb']:.0f} MB / workers (sum) {full['children_rss_mb']:.0f} MB "
        f"({args.rows:,} rows) vs main {part['rss_mb']:.0f} MB / workers "
        f"{part['children_rss_mb']:.0f} MB ({args.small:,} rows)"
    )


if __name__ == "__main__":
    main()
