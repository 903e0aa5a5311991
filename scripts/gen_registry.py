#!/usr/bin/env python3
"""Write a realistic voucher registry (接種券) CSV for tests, demos and benchmarks.

    python scripts/gen_registry.py --rows 1000000 --out var/registry.csv \
        --encoding cp932 --bad-percent 2 --seed 1

Rows are written as they are generated (a million rows never sit in memory); progress goes
to stderr, and at the end a summary of the deliberately bad rows by kind.

The data looks like a municipal export: one municipality's towns and postal codes, names with
kana (sometimes half-width or hiragana), birth dates in mixed Western and era styles,
sometimes full-width digits, hyphenated phone numbers, sequential-ish 10-digit voucher numbers
with leading zeros, addresses that occasionally need CSV quoting (a comma, a line break).

This script knows the era table on its own, on purpose: it checks the parser rather than
sharing its code.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

HEADER_JA = [
    "接種券番号",
    "宛名番号",
    "氏名",
    "氏名カナ",
    "生年月日",
    "性別",
    "郵便番号",
    "住所",
    "電話番号",
    "メールアドレス",
    "接種回数",
]
HEADER_EN = [
    "voucher_number",
    "address_number",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "postal_code",
    "address",
    "phone",
    "email",
    "dose",
]

SURNAMES: list[tuple[str, str, str]] = [
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("山下", "ヤマシタ", "yamashita"),
    ("中島", "ナカジマ", "nakajima"),
    ("石井", "イシイ", "ishii"),
    ("小川", "オガワ", "ogawa"),
    ("前田", "マエダ", "maeda"),
    ("岡田", "オカダ", "okada"),
    ("長谷川", "ハセガワ", "hasegawa"),
    ("藤田", "フジタ", "fujita"),
    ("後藤", "ゴトウ", "goto"),
    ("近藤", "コンドウ", "kondo"),
    ("村上", "ムラカミ", "murakami"),
    ("遠藤", "エンドウ", "endo"),
    ("青木", "アオキ", "aoki"),
    ("坂本", "サカモト", "sakamoto"),
    ("齋藤", "サイトウ", "saito"),
    ("髙橋", "タカハシ", "takahashi"),
    ("渡邉", "ワタナベ", "watanabe"),
    ("大野", "オオノ", "ono"),
    ("新井", "アライ", "arai"),
    ("星野", "ホシノ", "hoshino"),
    ("茂木", "モテギ", "motegi"),
    ("須藤", "スドウ", "sudo"),
]
GIVEN_MALE: list[tuple[str, str]] = [
    ("太郎", "タロウ"),
    ("一郎", "イチロウ"),
    ("健一", "ケンイチ"),
    ("誠", "マコト"),
    ("茂", "シゲル"),
    ("博", "ヒロシ"),
    ("清", "キヨシ"),
    ("勇", "イサム"),
    ("隆", "タカシ"),
    ("浩二", "コウジ"),
    ("正雄", "マサオ"),
    ("和夫", "カズオ"),
    ("大輔", "ダイスケ"),
    ("翔太", "ショウタ"),
    ("拓也", "タクヤ"),
    ("健太", "ケンタ"),
    ("蓮", "レン"),
    ("悠真", "ユウマ"),
    ("陽翔", "ハルト"),
    ("湊", "ミナト"),
    ("雄一", "ユウイチ"),
    ("修", "オサム"),
    ("勝", "マサル"),
    ("進", "ススム"),
]
GIVEN_FEMALE: list[tuple[str, str]] = [
    ("花子", "ハナコ"),
    ("幸子", "サチコ"),
    ("和子", "カズコ"),
    ("節子", "セツコ"),
    ("洋子", "ヨウコ"),
    ("恵子", "ケイコ"),
    ("久美子", "クミコ"),
    ("由美", "ユミ"),
    ("裕子", "ユウコ"),
    ("美穂", "ミホ"),
    ("愛", "アイ"),
    ("彩", "アヤ"),
    ("美咲", "ミサキ"),
    ("陽菜", "ヒナ"),
    ("結衣", "ユイ"),
    ("さくら", "サクラ"),
    ("葵", "アオイ"),
    ("凛", "リン"),
    ("芽依", "メイ"),
    ("千代", "チヨ"),
    ("キヨ", "キヨ"),
    ("トシ", "トシ"),
    ("ユリ", "ユリ"),
    ("優子", "ユウコ"),
]

# (prefecture, city, area code, first three postal digits, towns)
MUNICIPALITIES: list[tuple[str, str, str, str, list[str]]] = [
    (
        "群馬県",
        "前橋市",
        "027",
        "371",
        ["大手町", "千代田町", "本町", "表町", "紅雲町", "朝日町", "南町", "岩神町", "日吉町"],
    ),
    (
        "神奈川県",
        "横須賀市",
        "046",
        "238",
        ["小川町", "米が浜通", "若松町", "日の出町", "汐入町", "大滝町", "追浜本町", "久里浜"],
    ),
    (
        "兵庫県",
        "姫路市",
        "079",
        "670",
        ["本町", "安田", "西今宿", "飾磨区細江", "広畑区夢前町", "大津区天満"],
    ),
    (
        "北海道",
        "旭川市",
        "0166",
        "070",
        ["1条通", "2条通", "3条通", "宮下通", "神楽", "東光", "末広", "春光"],
    ),
]
BUILDINGS = ["コーポ", "ハイツ", "メゾン", "グランドパレス", "サンシャイン", "レジデンス"]
EMAIL_DOMAINS = ["example.jp", "example.com", "example.ne.jp", "mail.example.org"]

# Era table kept independent of booking.registry.dates (see the module docstring).
ERAS: list[tuple[str, str, date]] = [
    ("令和", "R", date(2019, 5, 1)),
    ("平成", "H", date(1989, 1, 8)),
    ("昭和", "S", date(1926, 12, 25)),
    ("大正", "T", date(1912, 7, 30)),
    ("明治", "M", date(1868, 1, 25)),
]

_FULL_WIDTH_DIGITS = str.maketrans("0123456789-", "０１２３４５６７８９－")


def _half_width_kana_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code in range(0xFF66, 0xFF9E):
        half = chr(code)
        full = unicodedata.normalize("NFKC", half)
        table.setdefault(full, half)
    for code in range(0x30A1, 0x30FB):
        full = chr(code)
        if full in table:
            continue
        decomposed = unicodedata.normalize("NFD", full)
        if len(decomposed) == 2 and decomposed[0] in table:
            mark = "\uff9e" if decomposed[1] == "\u3099" else "\uff9f"
            table[full] = table[decomposed[0]] + mark
    table["ー"] = "\uff70"
    table["\u3000"] = " "
    return table


HALF_WIDTH_KANA = _half_width_kana_table()


def to_half_width_kana(text: str) -> str:
    return "".join(HALF_WIDTH_KANA.get(char, char) for char in text)


def to_hiragana(text: str) -> str:
    return "".join(chr(ord(char) - 0x60) if "\u30a1" <= char <= "\u30f6" else char for char in text)


def era_parts(day: date) -> tuple[str, str, int]:
    for name, letter, start in ERAS:
        if day >= start:
            return name, letter, day.year - start.year + 1
    raise ValueError("before Meiji")


def format_birth_date(rng: random.Random, day: date) -> str:
    y, m, d = day.year, day.month, day.day
    style = rng.random()
    if style < 0.20:
        text = f"{y:04d}-{m:02d}-{d:02d}"
    elif style < 0.35:
        text = f"{y}/{m}/{d}"
    elif style < 0.45:
        text = f"{y:04d}{m:02d}{d:02d}"
    elif style < 0.55:
        text = f"{y}年{m}月{d}日"
    else:
        name, letter, era_year = era_parts(day)
        era_style = rng.random()
        if era_style < 0.35:
            year_text = "元" if era_year == 1 and rng.random() < 0.7 else str(era_year)
            text = f"{name}{year_text}年{m}月{d}日"
        elif era_style < 0.60:
            text = f"{letter}{era_year}.{m}.{d}"
        elif era_style < 0.80:
            text = f"{letter}{era_year:02d}/{m:02d}/{d:02d}"
        else:
            text = f"{letter}{era_year}-{m}-{d}"
    if rng.random() < 0.05:
        text = text.translate(_FULL_WIDTH_DIGITS)
    return text


BAD_KINDS = (
    "bad_date",
    "short_voucher",
    "missing_kana",
    "duplicate_voucher",
    "bad_phone",
    "bad_postal_code",
)
BAD_DATES = [
    "平成32年1月1日",
    "昭和64年1月8日",
    "H31.5.1",
    "1990年2月30日",
    "S45.13.1",
    "不明",
    "2999-01-01",
    "昭和",
]


class RegistryWriter:
    def __init__(self, rng: random.Random, bad_percent: float, today: date) -> None:
        self.rng = rng
        self.bad_rate = bad_percent / 100
        self.today = today
        self.voucher = rng.randrange(1, 10**6) * 1000
        self.address_number = rng.randrange(10**9, 10**10)
        self.recent_vouchers: list[str] = []
        self.bad_counts: Counter[str] = Counter()
        prefecture, city, area_code, postal_prefix, towns = rng.choice(MUNICIPALITIES)
        self.prefecture = prefecture
        self.city = city
        self.area_code = area_code
        self.postal_prefix = postal_prefix
        self.towns = towns
        self.oldest = date(1915, 1, 1)
        self.span_days = (today - timedelta(days=180) - self.oldest).days

    def next_voucher(self) -> str:
        self.voucher += 1 if self.rng.random() < 0.97 else self.rng.randint(2, 40)
        return f"{self.voucher % 10**10:010d}"

    def phone(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.15:
            return ""
        if kind < 0.70:
            prefix = rng.choice(["090", "080", "070"])
            text = f"{prefix}-{rng.randrange(10000):04d}-{rng.randrange(10000):04d}"
        else:
            local_length = 10 - len(self.area_code)
            subscriber = f"{rng.randrange(10 ** (local_length - 1), 10**local_length)}"
            split = local_length - 4
            text = f"{self.area_code}-{subscriber[:split]}-{subscriber[split:]}"
        shape = rng.random()
        if shape < 0.20:
            text = text.replace("-", "")
        elif shape < 0.25:
            text = text.translate(_FULL_WIDTH_DIGITS)
        return text

    def postal_code(self) -> str:
        text = f"{self.postal_prefix}-{self.rng.randrange(10000):04d}"
        shape = self.rng.random()
        if shape < 0.10:
            return text.replace("-", "")
        if shape < 0.15:
            return "〒" + text
        if shape < 0.20:
            return text.translate(_FULL_WIDTH_DIGITS)
        return text

    def address(self) -> str:
        rng = self.rng
        street = f"{rng.randint(1, 5)}丁目{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        if rng.random() < 0.1:
            street = street.translate(_FULL_WIDTH_DIGITS)
        text = f"{self.prefecture}{self.city}{rng.choice(self.towns)}{street}"
        extra = rng.random()
        if extra < 0.15:
            building = f"{rng.choice(BUILDINGS)}{rng.choice(self.towns)}"
            text += f"　{building}{rng.randint(1, 9)}0{rng.randint(1, 9)}号室"
        elif extra < 0.17:
            text += f", {rng.choice(BUILDINGS)}{rng.randint(1, 5)}階"  # needs quoting
        elif extra < 0.18:
            surname = rng.choice(SURNAMES)[0]
            text += f"\r\n{surname}方"  # a line break inside a quoted field
        return text

    def row(self) -> tuple[list[str], str | None]:
        rng = self.rng
        surname, surname_kana, romaji = rng.choice(SURNAMES)
        male = rng.random() < 0.48
        given, given_kana = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
        name = f"{surname}　{given}" if rng.random() < 0.8 else f"{surname}{given}"
        kana = f"{surname_kana}　{given_kana}" if rng.random() < 0.8 else surname_kana + given_kana
        kana_shape = rng.random()
        if kana_shape < 0.03:
            kana = to_half_width_kana(kana)
        elif kana_shape < 0.06:
            kana = to_hiragana(kana)
        birth = self.oldest + timedelta(days=rng.randrange(self.span_days))
        sex_style = rng.random()
        if sex_style < 0.8:
            sex = "1" if male else "2"
        else:
            sex = "男" if male else "女"
        self.address_number += rng.randint(1, 9)
        email = ""
        if rng.random() < 0.2:
            email = f"{romaji}.{rng.randrange(100000)}@{rng.choice(EMAIL_DOMAINS)}"
        dose = rng.choice(["", "1", "2", "3", "3", "4", "5", "3回目"])
        voucher = self.next_voucher()
        row = [
            voucher,
            f"{self.address_number:012d}"[-12:],
            name,
            kana,
            format_birth_date(rng, birth),
            sex,
            self.postal_code(),
            self.address(),
            self.phone(),
            email,
            dose,
        ]
        bad_kind = None
        if rng.random() < self.bad_rate:
            bad_kind = rng.choice(BAD_KINDS)
            if bad_kind == "duplicate_voucher" and not self.recent_vouchers:
                bad_kind = "short_voucher"
            self.spoil(row, bad_kind)
            self.bad_counts[bad_kind] += 1
        else:
            self.recent_vouchers.append(voucher)
            if len(self.recent_vouchers) > 1000:
                del self.recent_vouchers[:500]
        return row, bad_kind

    def spoil(self, row: list[str], kind: str) -> None:
        rng = self.rng
        if kind == "bad_date":
            row[4] = rng.choice(BAD_DATES)
        elif kind == "short_voucher":
            # What a spreadsheet does to a number column: the leading zero is gone.
            row[0] = row[0][1:]
        elif kind == "missing_kana":
            row[3] = ""
        elif kind == "duplicate_voucher":
            row[0] = rng.choice(self.recent_vouchers)
        elif kind == "bad_phone":
            row[8] = f"090-{rng.randrange(10000):04d}-{rng.randrange(100):02d}"  # 9 digits
        elif kind == "bad_postal_code":
            row[6] = f"{self.postal_prefix}-{rng.randrange(1000):03d}"


def write_registry(
    out: TextIO,
    *,
    rows: int,
    bad_percent: float,
    seed: int,
    english_header: bool = False,
    today: date | None = None,
    progress: TextIO | None = None,
) -> Counter[str]:
    """Write ``rows`` data rows (plus the header) to ``out``; return the bad rows by kind."""
    rng = random.Random(seed)
    if today is None:
        today = datetime.now(timezone(timedelta(hours=9))).date()
    writer_state = RegistryWriter(rng, bad_percent, today)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER_EN if english_header else HEADER_JA)
    started = time.monotonic()
    step = max(rows // 20, 1)
    for index in range(1, rows + 1):
        row, _ = writer_state.row()
        writer.writerow(row)
        if progress is not None and (index % step == 0 or index == rows):
            elapsed = time.monotonic() - started
            progress.write(f"gen_registry: {index:,} / {rows:,} rows ({elapsed:.1f}s)\n")
            progress.flush()
    return writer_state.bad_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a realistic voucher registry CSV.")
    parser.add_argument("--rows", type=int, required=True, help="number of data rows")
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument(
        "--encoding",
        choices=["cp932", "utf-8", "utf-8-sig"],
        default="cp932",
        help="file encoding (default: cp932, as Excel on Windows writes)",
    )
    parser.add_argument(
        "--bad-percent", type=float, default=2.0, help="share of bad rows (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--english-header", action="store_true", help="English column names instead"
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="latest birth date bound, YYYY-MM-DD (default: today)",
    )
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be 0 or more")
    if not 0 <= args.bad_percent <= 100:
        parser.error("--bad-percent must be between 0 and 100")

    with args.out.open("w", encoding=args.encoding, newline="") as out:
        bad = write_registry(
            out,
            rows=args.rows,
            bad_percent=args.bad_percent,
            seed=args.seed,
            english_header=args.english_header,
            today=args.today,
            progress=sys.stderr,
        )
    summary = ", ".join(f"{kind} {bad[kind]}" for kind in BAD_KINDS)
    sys.stderr.write(
        f"gen_registry: wrote {args.out} ({args.encoding}); bad rows: {summary} "
        "(a duplicate voucher also makes the row it repeats an error)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
