"""Activation codes (the voucher_code login mode): issued at the end of an apply, only
their keyed hash kept, the codes themselves in one sealed file downloadable once."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryImport, Voucher
from booking.services.bulk_reads import codes_file_scope
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


def _new_code(random_bytes: bytes) -> str:
    number = int.from_bytes(random_bytes, "big")
    chars = []
    for _position in range(CODE_LENGTH):
        number, index = divmod(number, 32)
        chars.append(CODE_ALPHABET[index])
    return "".join(chars)


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def activation_code_hash(cipher: Any, code: str) -> bytes:
    """A keyed hash (not a password hash): a million codes are issued in one import, and the
    key — which never leaves the key provider unwrapped — is what keeps 40 bits from being
    walked offline."""
    return cipher.blind_index(code.replace("-", "").upper(), purpose=_CODE_PURPOSE)


def activation_codes_issue(registry_import: RegistryImport) -> tuple[str, int]:
    """Give every active voucher without a code a new one; only its hash is kept. The codes
    go into one file, encrypted under the municipality's key, downloadable once. Written a
    segment at a time (a million new vouchers make a file of some 25 MB)."""
    if not _without_code().exists():
        return "", 0
    issued = [0]
    name = sealed_file_save(
        codes_file_name(registry_import.pk),
        _issued_codes(cipher_for(current_municipality()), issued),
        table=_TABLE,
        row_id=str(registry_import.pk),
    )
    return name, issued[0]


def _without_code() -> Any:
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE, activation_code_hash=None)


def _issued_codes(cipher: Any, issued: list[int]) -> Iterator[bytes]:
    """Issue the codes a batch of vouchers at a time, in id order, and yield the codes file
    (UTF-8 CSV) a batch at a time; ``issued`` counts them."""
    index = cipher.blind_indexer(_CODE_PURPOSE)  # what activation_code_hash computes
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["接種券番号", "認証コード"])
    pending = _without_code()
    after = 0
    while True:
        # After the last id done, not from the start again: the vouchers done are still in
        # the index the query walks (as updated rows), a million of them by the end.
        batch = list(
            pending.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "voucher_number")[:_ISSUE_BATCH]
        )
        if not batch:
            break
        randomness = os.urandom(5 * len(batch))
        ids, hashes = [], []
        for position, (voucher_id, number) in enumerate(batch):
            code = _new_code(randomness[5 * position : 5 * position + 5])
            writer.writerow([number, format_code(code)])
            ids.append(voucher_id)
            hashes.append(index(code.encode()))
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE booking_voucher v SET activation_code_hash = u.hash, updated_at = now()"
                " FROM unnest(%s::bigint[], %s::bytea[]) AS u(id, hash) WHERE v.id = u.id",
                [ids, hashes],
            )
        issued[0] += len(batch)
        after = batch[-1][0]
        yield text.getvalue().encode("utf-8")
        text.seek(0)
        text.truncate()


def registry_import_codes_file(
    *, registry_import: RegistryImport, actor: Actor, ip: str | None = None
) -> tuple[str, bytes]:
    """The activation codes for the print vendor, once: the file is deleted as it is read."""
    with transaction.atomic():
        claimed = (
            RegistryImport.objects.filter(pk=registry_import.pk, codes_downloaded_at=None)
            .exclude(codes_file="")
            .update(codes_downloaded_at=timezone.now())
        )
        if claimed != 1:
            raise RegistryImportRefused(
                _(
                    "認証コードのファイルは既にダウンロードされたか、ありません（一度だけ取得できます）。"
                )
            )
        text = b"".join(
            sealed_file_open(
                registry_import.codes_file, table=_TABLE, row_id=str(registry_import.pk)
            )
        ).decode("utf-8")
        record(
            action="registry_import.codes_downloaded",
            actor=actor,
            target=registry_import,
            ip=ip,
            details={
                "file_name": audit_file_name(registry_import),
                "codes": int(registry_import.counts.get("codes_issued", 0)),
                **codes_file_scope(text),
            },
        )
    default_storage.delete(registry_import.codes_file)
    RegistryImport.objects.filter(pk=registry_import.pk).update(codes_file="")
    return f"activation-codes-{registry_import.pk}.csv", ("\ufeff" + text).encode("utf-8")
