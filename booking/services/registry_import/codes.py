"""Activation codes (the voucher_code login mode): issued at the end of an apply, only
their keyed hash kept, the codes themselves in one sealed file downloadable once."""

from __future__ import annotations

import base64
import collections
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, RegistryImportCodes, Voucher
from booking.services.bulk_reads import VoucherRanges, codes_file_scope, voucher_ranges
from booking.services.registry_import.files import (
    codes_file_name,
    sealed_file_open,
    sealed_file_save,
)
from booking.services.registry_import.state import RegistryImportRefused, audit_file_name
from tenants.crypto import cipher_for
from tenants.db import current_municipality

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed
CODE_LENGTH = 8  # 32**8 = 2**40
_CODE_PURPOSE = "activation-code"
_ISSUE_BATCH = 20_000
_TABLE = "registry_codes_file"


# Base32 (RFC 4648) turns every 5 random bytes into 8 characters of its own alphabet, the
# 32 values in order; each is mapped to the character of CODE_ALPHABET with the same value.
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CODE_ALPHABET.encode())


def _new_codes(count: int) -> list[str]:
    """``count`` codes, 40 random bits each (5 bytes: the CODE_LENGTH, 8, characters of
    their base32), made in one pass."""
    letters = base64.b32encode(os.urandom(5 * count)).translate(_FROM_BASE32).decode()
    return [letters[start : start + CODE_LENGTH] for start in range(0, len(letters), CODE_LENGTH)]


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def activation_code_hash(cipher: Any, code: str) -> bytes:
    """A keyed hash (not a password hash): a million codes are issued in one import, and the
    key — which never leaves the key provider unwrapped — is what keeps 40 bits from being
    walked offline."""
    return cipher.blind_index(code.replace("-", "").upper(), purpose=_CODE_PURPOSE)


_CODES_HEADER = "接種券番号,認証コード\r\n"
# The codes one apply batch issued, sealed while they wait for the codes file.
_BATCH_TABLE = "registry_import_codes"


def activation_codes_new(cipher: Any, numbers: Sequence[str]) -> tuple[str, list[bytes]]:
    """New codes for the vouchers ``numbers``: their rows of the codes file (CSV) and each
    code's hash (what ``activation_code_hash`` computes), in the same order."""
    index = cipher.blind_indexer(_CODE_PURPOSE)
    codes = _new_codes(len(numbers))
    # Voucher numbers are digits and codes letters and digits: nothing a CSV writer quotes.
    rows = "".join(
        f"{number},{format_code(code)}\r\n" for number, code in zip(numbers, codes, strict=True)
    )
    # Each BLIND_INDEX_BYTES long (a truncated HMAC): the apply packs them end to end.
    return rows, [index(code.encode()) for code in codes]


def activation_codes_keep(
    cipher: Any,
    *,
    registry_import_id: int,
    after_line: int,
    rows: str,
    voucher_ids: Sequence[int],
) -> None:
    """Keep an apply batch's codes (sealed) until the codes file is written: in the batch's
    transaction, with the vouchers that carry their hashes (``voucher_ids``)."""
    RegistryImportCodes.objects.create(
        registry_import_id=registry_import_id,
        after_line=after_line,
        codes=len(voucher_ids),
        voucher_ranges=voucher_ranges(voucher_ids),
        sealed=cipher.encrypt_field(
            rows, table=_BATCH_TABLE, column="rows", row_id=f"{registry_import_id}:{after_line}"
        ),
    )


def activation_codes_issue(registry_import: RegistryImport) -> tuple[str, int]:
    """The codes file, at the end of an apply: the codes its batches issued with the new
    vouchers, and new codes for any other active voucher still without one (listed before
    the municipality used codes). Only the codes' hashes are kept; the codes go into one
    file, sealed a segment at a time under the municipality's key, downloadable once.
    The vouchers it holds are set on ``registry_import.codes_scope`` for the caller to
    save with the file's name."""
    kept = RegistryImportCodes.objects.filter(registry_import=registry_import)
    if not kept.exists() and not _without_code().exists():
        return "", 0
    issued = _Issued()
    cipher = cipher_for(current_municipality())
    name = sealed_file_save(
        codes_file_name(registry_import.pk),
        itertools.chain(
            [_CODES_HEADER.encode()],
            _kept_codes(cipher, registry_import.pk, issued),
            _issued_codes(cipher, issued),
        ),
        table=_TABLE,
        row_id=str(registry_import.pk),
    )
    kept.delete()
    registry_import.codes_scope = {
        "voucher_ranges": issued.vouchers.pairs,
        "residents": issued.vouchers.count,
    }
    return name, issued.codes


@dataclass
class _Issued:
    """What has gone into the codes file so far."""

    # Counted apart from the vouchers: a batch kept before its vouchers were recorded has
    # its codes but no ranges.
    codes: int = 0
    vouchers: VoucherRanges = field(default_factory=VoucherRanges)


def _kept_codes(cipher: Any, registry_import_id: int, issued: _Issued) -> Iterator[bytes]:
    """The apply batches' codes, batch by batch in file order (one batch in memory)."""
    kept = RegistryImportCodes.objects.filter(registry_import_id=registry_import_id)
    for after_line in kept.order_by("after_line").values_list("after_line", flat=True):
        batch = kept.get(after_line=after_line)
        yield cipher.decrypt_field(
            bytes(batch.sealed),
            table=_BATCH_TABLE,
            column="rows",
            row_id=f"{registry_import_id}:{after_line}",
        ).encode()
        issued.codes += batch.codes
        for first, last in batch.voucher_ranges:
            issued.vouchers.add(first, last)


def _without_code() -> Any:
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE, activation_code_hash=None)


def _issued_codes(cipher: Any, issued: _Issued) -> Iterator[bytes]:
    """Codes for the active vouchers still without one, a batch of vouchers at a time in id
    order, each batch's rows of the codes file yielded as it is done."""
    pending = _without_code()
    after = 0
    while True:
        # After the last id done, not from the start again: the vouchers done are still in
        # the index the query walks (as updated rows).
        batch = list(
            pending.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "voucher_number")[:_ISSUE_BATCH]
        )
        if not batch:
            break
        rows, hashes = activation_codes_new(cipher, [number for _id, number in batch])
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE booking_voucher v SET activation_code_hash = u.hash, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::bytea[]) AS u(id, hash) WHERE v.id = u.id",
                [[voucher_id for voucher_id, _number in batch], hashes],
            )
        issued.codes += len(batch)
        issued.vouchers.add_ids(voucher_id for voucher_id, _number in batch)
        after = batch[-1][0]
        yield rows.encode()


def registry_import_codes_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, Iterator[bytes]]:
    """The activation codes for the print vendor, once, a segment at a time (UTF-8 with a
    BOM); the file is deleted when the download ends, read to the end or not. Its vouchers
    are named in the audit trail from the scope recorded with the file (a file from before
    that is read for it). Never held whole: the file is opened twice, a segment at a time,
    first to check it in the claim's transaction, then as the download."""
    with transaction.atomic():
        claimable = RegistryImport.objects.filter(
            pk=registry_import.pk, codes_downloaded_at=None
        ).exclude(codes_file="")
        claimed = claimable.select_for_update().values_list("codes_file", "codes_scope").first()
        if claimed is None:
            raise RegistryImportRefused(
                _(
                    "認証コードのファイルは既にダウンロードされたか、ありません（一度だけ取得できます）。"
                )
            )
        stored, recorded_scope = claimed
        claimable.update(codes_downloaded_at=timezone.now(), codes_file="")
        # Every segment opened once before the claim commits (a million codes take a few
        # hundredths of a second): a file that is missing or damaged is not marked as
        # downloaded, and the download cannot break off on a bad segment.
        if recorded_scope:
            scope = recorded_scope
            collections.deque(_codes_open(registry_import.pk, stored), maxlen=0)
        else:
            scope = codes_file_scope(_codes_open(registry_import.pk, stored))
        record(
            action="registry_import.codes_downloaded",
            actor=actor,
            target=registry_import,
            ip=ip,
            details={
                "file_name": audit_file_name(registry_import),
                "codes": int(registry_import.counts.get("codes_issued", 0)),
                **scope,
            },
        )
        # Opened here, where the municipality's key is at hand: the response is read after
        # the request has left the municipality's schema.
        content = _codes_open(registry_import.pk, stored)
        first = next(content)
    registry_import.codes_file = ""
    # The municipality's code in the name: a print vendor working for several towns keeps
    # each town's letters apart.
    name = f"activation-codes-{current_municipality().code}-{registry_import.pk}.csv"
    return name, _DeletedWhenDone(itertools.chain([_BOM, first], content), stored)


_BOM = "\ufeff".encode()


def _codes_open(registry_import_id: int, stored: str) -> Iterator[bytes]:
    return sealed_file_open(stored, table=_TABLE, row_id=str(registry_import_id))


class _DeletedWhenDone:
    """``content``, then the stored file deleted: when it has all been read, or when the
    response is closed before that (a download cut short is not offered again). Django
    closes a streaming response's content when the response is closed."""

    def __init__(self, content: Iterator[bytes], stored: str) -> None:
        self._content = content
        self._stored = stored
        self._deleted = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._content)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        if not self._deleted:
            self._deleted = True
            default_storage.delete(self._stored)
