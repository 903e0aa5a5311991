"""Throughput of tenant field encryption on one core, for a typical six-field registry row.

    .venv/bin/python scripts/bench/bench_crypto.py [--seconds 2]

A registry import of a million residents pays once per cipher operation, so this compares
encrypting the six personal fields one by one with sealing them as one record.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from tenants.crypto import TenantCipher  # noqa: E402

TABLE = "booking_resident"
ROW: dict[str, str | None] = {
    "name": "山田 太郎",
    "kana": "ヤマダ タロウ",
    "birth_date": "1948-04-01",
    "phone": "090-1234-5678",
    "email": "taro.yamada@example.jp",
    "address": "東京都千代田区千代田1-1-1 千代田マンション101",
}


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second: best of three runs, each about `seconds` / 3 long."""
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            operation()
        if time.perf_counter() - started > 0.05:
            break
        batch *= 2
    best = 0.0
    for _ in range(3):
        calls = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / 3:
            for _ in range(batch):
                operation()
            calls += batch
        best = max(best, calls / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()

    # One core, so the figures do not depend on how many the machine has.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    data_key = os.urandom(32)
    cipher = TenantCipher("131016", data_key)
    row_id = "0123456789"
    fields = [(column, value) for column, value in ROW.items() if value is not None]
    field_blobs = [
        (column, cipher.encrypt_field(value, table=TABLE, column=column, row_id=row_id))
        for column, value in fields
    ]
    record_blob = cipher.seal_record(ROW, table=TABLE, row_id=row_id)

    def encrypt_one_field() -> None:
        cipher.encrypt_field(ROW["phone"] or "", table=TABLE, column="phone", row_id=row_id)

    def encrypt_row_by_fields() -> None:
        for column, value in fields:
            cipher.encrypt_field(value, table=TABLE, column=column, row_id=row_id)

    def decrypt_row_by_fields() -> None:
        for column, blob in field_blobs:
            cipher.decrypt_field(blob, table=TABLE, column=column, row_id=row_id)

    def seal_row() -> None:
        cipher.seal_record(ROW, table=TABLE, row_id=row_id)

    def open_row() -> None:
        cipher.open_record(record_blob, table=TABLE, row_id=row_id)

    def index_phone() -> None:
        cipher.blind_index("09012345678", purpose="resident.phone")

    def build_cipher() -> None:
        TenantCipher("131016", data_key)

    field_ops = rate(encrypt_one_field, args.seconds)
    rows_by_fields = rate(encrypt_row_by_fields, args.seconds)
    rows_decrypted = rate(decrypt_row_by_fields, args.seconds)
    rows_sealed = rate(seal_row, args.seconds)
    rows_opened = rate(open_row, args.seconds)
    indexes = rate(index_phone, args.seconds)
    ciphers = rate(build_cipher, args.seconds)

    sizes = sum(len(blob) for _, blob in field_blobs)
    print(f"Python {sys.version.split()[0]}, one core, six-field row ({len(ROW)} columns)")
    print(f"encrypt_field (one field)      {field_ops:>12,.0f} ops/s")
    print(
        f"encrypt_field x6 (one row)     {rows_by_fields:>12,.0f} rows/s"
        f"  ({rows_by_fields * len(fields):,.0f} field ops/s)"
    )
    print(f"decrypt_field x6 (one row)     {rows_decrypted:>12,.0f} rows/s")
    print(f"seal_record (one row)          {rows_sealed:>12,.0f} rows/s")
    print(f"open_record (one row)          {rows_opened:>12,.0f} rows/s")
    print(f"blind_index                    {indexes:>12,.0f} ops/s")
    print(f"TenantCipher() construction    {ciphers:>12,.0f} ops/s")
    print(f"bytes per row: {sizes} as six fields, {len(record_blob)} sealed")
    print(
        f"one million rows: {1e6 / rows_by_fields:.1f} s as fields, "
        f"{1e6 / rows_sealed:.1f} s sealed"
    )


if __name__ == "__main__":
    main()
