"""Re-wrap every municipality's data key under the current master key (docs/operations.md 4.2).

The data key itself does not change — every ciphertext and blind index stays valid — only its
wrapping does: after the tenant KMS key is replaced (SESSHU_KMS_KEY_ID now names the new
key), or after a local master key is replaced in development.

    manage.py tenant_rewrap_keys --from-kms-key-id arn:aws:kms:ap-northeast-1:...:key/OLD
    manage.py tenant_rewrap_keys --from-local-master-key-file /run/secrets/old-master-key
    manage.py tenant_rewrap_keys --force        # same key, new key material (KMS rotation)

- KMS to KMS uses ReEncrypt: the plain data key never leaves KMS. The role running it needs
  kms:ReEncryptFrom on the old key and kms:ReEncryptTo on the new one, with the tenant
  encryption context. Any other pair unwraps with the old provider and wraps with the new.
- Idempotent: a key the current provider already unwraps is left alone (unless --force),
  so the command can be run again after an interruption.
- Each new wrapping is unwrapped by the current provider and compared with the old plain key
  before it is stored, and stored only if the row still holds the wrapping that was read.
- One platform audit event per municipality re-wrapped (key ids only, never key material).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import record
from sesshu import aws
from sesshu.command_actor import command_actor
from tenants.keys import (
    KeyProvider,
    KeyUnavailable,
    KmsKeyProvider,
    LocalKeyProvider,
    _decode_master_key,
    forget_data_key,
    key_provider,
)
from tenants.models import Municipality

ACTOR = command_actor("tenant_rewrap_keys")


def _describe(provider: KeyProvider) -> str:
    if isinstance(provider, KmsKeyProvider):
        return f"aws-kms {provider.key_id}"
    return provider.name


def _wrap(target: KeyProvider, code: str, plaintext: bytes) -> bytes:
    """Wrap a given data key under `target` (generate_data_key only wraps keys it makes)."""
    if isinstance(target, KmsKeyProvider | LocalKeyProvider):
        return target.wrap_data_key(tenant_code=code, plaintext=plaintext)
    raise CommandError(f"Cannot wrap under provider {target.name!r}.")


class Command(BaseCommand):
    help = "Re-wrap every municipality's data key under the current master key (KMS or local)."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--from-kms-key-id", metavar="ARN", help="the KMS key the data keys are wrapped under"
        )
        source.add_argument(
            "--from-local-master-key-file",
            metavar="PATH",
            type=Path,
            help="a file holding the old local master key (base64); never on the command line",
        )
        parser.add_argument("--code", help="only this municipality (市区町村コード)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="re-wrap even keys the current provider already unwraps (new key material)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be re-wrapped, change nothing"
        )

    def _source(self, options: dict[str, Any], target: KeyProvider) -> KeyProvider:
        if options["from_kms_key_id"]:
            return KmsKeyProvider(options["from_kms_key_id"], aws.client("kms"))
        if options["from_local_master_key_file"]:
            path: Path = options["from_local_master_key_file"]
            try:
                encoded = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror}") from None
            try:
                return LocalKeyProvider(_decode_master_key(encoded))
            except ImproperlyConfigured as exc:
                raise CommandError(f"{path}: {exc}") from None
        return target

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            target = key_provider()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        source = self._source(options, target)
        municipalities = Municipality.objects.exclude(
            status=Municipality.Status.DECOMMISSIONED
        ).order_by("code")
        if options["code"]:
            municipalities = municipalities.filter(code=options["code"].strip())
            if not municipalities.exists():
                raise CommandError(f"No municipality with code {options['code']} to re-wrap.")
        rows = list(municipalities.values_list("pk", "code", "wrapped_data_key"))
        total = len(rows)
        self.stdout.write(
            f"Re-wrapping {total} data key(s): from {_describe(source)} to {_describe(target)}"
            + (" (dry run)" if options["dry_run"] else "")
        )
        counts = {"rewrapped": 0, "current": 0, "failed": 0, "changed": 0}
        for index, (pk, code, wrapped_value) in enumerate(rows, start=1):
            wrapped = bytes(wrapped_value)
            outcome = self._one(
                source, target, pk, code, wrapped, force=options["force"], dry=options["dry_run"]
            )
            counts[outcome] += 1
            self.stdout.write(f"[{index}/{total}] {code}: {outcome}")
        self.stdout.write(
            f"Done: {counts['rewrapped']} re-wrapped, {counts['current']} already current, "
            f"{counts['changed']} changed meanwhile (run again), {counts['failed']} failed."
        )
        if counts["failed"] or counts["changed"]:
            raise CommandError("Some data keys were not re-wrapped; see above.")

    def _one(
        self,
        source: KeyProvider,
        target: KeyProvider,
        pk: int,
        code: str,
        wrapped: bytes,
        *,
        force: bool,
        dry: bool,
    ) -> str:
        if not wrapped:
            self.stderr.write(f"{code}: no wrapped data key")
            return "failed"
        if not force:
            try:
                target.unwrap_data_key(tenant_code=code, wrapped=wrapped)
                return "current"
            except KeyUnavailable:
                pass
        try:
            plaintext = source.unwrap_data_key(tenant_code=code, wrapped=wrapped)
            if dry:
                return "rewrapped"
            if isinstance(source, KmsKeyProvider) and isinstance(target, KmsKeyProvider):
                new_wrapped = target.reencrypt_data_key(
                    tenant_code=code, wrapped=wrapped, source_key_id=source.key_id
                )
            else:
                new_wrapped = _wrap(target, code, plaintext)
            if target.unwrap_data_key(tenant_code=code, wrapped=new_wrapped) != plaintext:
                raise KeyUnavailable(f"the new wrapping of {code} does not unwrap to its key")
        except KeyUnavailable as exc:
            self.stderr.write(f"{code}: {exc}")
            return "failed"
        updated = Municipality.objects.filter(pk=pk, wrapped_data_key=wrapped).update(
            wrapped_data_key=new_wrapped
        )
        if updated != 1:
            return "changed"
        forget_data_key(code)
        record(
            action="tenant.data_key_rewrapped",
            actor=ACTOR,
            target=("tenants.municipality", str(pk)),
            details={"code": code, "from": _describe(source), "to": _describe(target)},
        )
        return "rewrapped"
