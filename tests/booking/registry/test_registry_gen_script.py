"""scripts/gen_registry.py, run as operators run it, read back with the registry parsers."""

from __future__ import annotations

import codecs
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from booking.registry.csvfile import open_registry
from booking.registry.rows import DuplicateVoucherFinder, RegistryRecord, parse_record

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gen_registry.py"
TODAY = date(2026, 11, 23)

# The kinds of bad row the script writes -> the column the parser must blame.
COLUMN_OF_KIND = {
    "bad_date": "生年月日",
    "short_voucher": "接種券番号",
    "missing_kana": "氏名カナ",
    "bad_phone": "電話番号",
    "bad_postal_code": "郵便番号",
}


def _generate(tmp_path: Path, *args: str) -> tuple[Path, str]:
    out = tmp_path / "registry.csv"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--today", TODAY.isoformat(), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out, completed.stderr


def _bad_counts(stderr: str) -> dict[str, int]:
    summary = stderr.rsplit("bad rows: ", 1)[1]
    return {kind: int(count) for kind, count in re.findall(r"(\w+) (\d+)", summary)}


@pytest.mark.parametrize("encoding", ["cp932", "utf-8", "utf-8-sig"])
def test_every_bad_row_the_script_writes_is_caught_and_no_good_row_is(
    tmp_path: Path, encoding: str
) -> None:
    out, stderr = _generate(
        tmp_path, "--rows", "4000", "--encoding", encoding, "--bad-percent", "6", "--seed", "11"
    )
    bad = _bad_counts(stderr)
    assert sum(bad.values()) > 150  # 6 % of 4000, give or take
    assert all(bad[kind] > 0 for kind in (*COLUMN_OF_KIND, "duplicate_voucher"))

    errors_by_column: Counter[str] = Counter()
    good = 0
    finder = DuplicateVoucherFinder()
    with out.open("rb") as stream, open_registry(stream) as registry:
        assert registry.encoding == encoding
        for record in registry:
            result = parse_record(record, today=TODAY)
            if isinstance(result, RegistryRecord):
                good += 1
                finder.add(result.voucher_number, result.line_number)
            else:
                assert len(result) == 1, result  # each bad row has exactly one fault
                errors_by_column[result[0].column or ""] += 1

    for kind, column in COLUMN_OF_KIND.items():
        assert errors_by_column[column] == bad[kind], kind
    assert sum(errors_by_column.values()) == sum(bad.values()) - bad["duplicate_voucher"]
    assert good + sum(errors_by_column.values()) == 4000

    duplicates = finder.duplicates()
    repeated_rows = sum(len(lines) - 1 for lines in duplicates.values())
    assert repeated_rows == bad["duplicate_voucher"]


def test_the_file_has_the_encoding_asked_for(tmp_path: Path) -> None:
    out, _ = _generate(tmp_path, "--rows", "300", "--encoding", "cp932", "--seed", "2")
    raw = out.read_bytes()
    assert not raw.startswith(codecs.BOM_UTF8)
    text = raw.decode("cp932")  # strict: every character is CP932
    assert text.startswith("接種券番号,宛名番号,氏名,氏名カナ,生年月日")
    assert "\r\n" in text

    out, _ = _generate(tmp_path, "--rows", "10", "--encoding", "utf-8-sig")
    assert out.read_bytes().startswith(codecs.BOM_UTF8)


def test_the_data_looks_like_a_municipal_export(tmp_path: Path) -> None:
    out, _ = _generate(tmp_path, "--rows", "3000", "--encoding", "utf-8", "--seed", "5")
    text = out.read_bytes().decode("utf-8")  # bytes: keep the \r\n line endings
    # Era and Western dates, full-width digits, half-width kana and hiragana, quoted fields.
    assert re.search(r",(昭和|平成|令和)(\d+|元)年\d+月\d+日,", text)
    assert re.search(r",[MTSHR]\d+\.\d+\.\d+,", text)
    assert re.search(r",\d{4}-\d{2}-\d{2},", text)
    assert re.search(r"[０-９]", text)
    assert re.search(r"[\uff66-\uff9f]", text)
    assert re.search(r",[\u3041-\u3096]+[ 　]?[\u3041-\u3096]*,", text)
    assert re.search(r',"[^"]*\r\n[^"]*",', text)  # a line break inside a quoted address
    assert re.search(r',"[^"\r\n]*, [^"\r\n]*",', text)  # a comma inside one
    assert re.search(r",0[789]0-\d{4}-\d{4},", text)

    vouchers = [line.split(",", 1)[0] for line in text.splitlines()[1:] if line[:1].isdigit()]
    ten_digit = [voucher for voucher in vouchers if len(voucher) == 10]
    assert len(ten_digit) > 2500
    steps = [int(b) - int(a) for a, b in zip(ten_digit, ten_digit[1:], strict=False)]
    assert Counter(steps).most_common(1)[0][0] == 1  # sequential-ish


def test_the_same_seed_writes_the_same_file(tmp_path: Path) -> None:
    first, _ = _generate(tmp_path, "--rows", "500", "--seed", "9")
    first_bytes = first.read_bytes()
    second, _ = _generate(tmp_path, "--rows", "500", "--seed", "9")
    assert second.read_bytes() == first_bytes
    third, _ = _generate(tmp_path, "--rows", "500", "--seed", "10")
    assert third.read_bytes() != first_bytes


def test_progress_goes_to_stderr(tmp_path: Path) -> None:
    _, stderr = _generate(tmp_path, "--rows", "2000", "--seed", "1")
    assert "gen_registry: 2,000 / 2,000 rows" in stderr
    assert "gen_registry: 100 / 2,000 rows" in stderr


def test_english_headers_and_no_bad_rows(tmp_path: Path) -> None:
    out, stderr = _generate(
        tmp_path, "--rows", "1000", "--english-header", "--bad-percent", "0", "--seed", "4"
    )
    assert sum(_bad_counts(stderr).values()) == 0
    with out.open("rb") as stream, open_registry(stream) as registry:
        results = [parse_record(record, today=TODAY) for record in registry]
    assert len(results) == 1000
    assert all(isinstance(result, RegistryRecord) for result in results)


def test_zero_rows_writes_only_the_header(tmp_path: Path) -> None:
    out, _ = _generate(tmp_path, "--rows", "0")
    assert out.read_bytes().decode("cp932").count("\r\n") == 1


def test_bad_arguments_are_refused() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "10", "--out", "x.csv", "--bad-percent", "150"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "--bad-percent" in completed.stderr
