"""Tenant data keys: envelope encryption under a master key, and a short-lived plain-key cache.

Each municipality has one 256-bit data key. Only its wrapped form is stored (on the tenant
row); the master key that unwraps it lives in AWS KMS in production, or in a setting on a
developer's machine. Destroying the wrapped key (or the KMS key) crypto-shreds the tenant.

Nothing in this module logs, formats or raises with key material: `DataKey` hides its
plaintext from repr, and error messages name only the tenant and the provider.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

DATA_KEY_BYTES = 32
DEFAULT_DATA_KEY_TTL = 300
# How long past its expiry a plain key may still be served while KMS cannot be reached, and
# how often KMS is asked again meanwhile (DataKeyCache).
DEFAULT_DATA_KEY_GRACE = 900
STALE_RETRY_SECONDS = 30.0
ENCRYPTION_CONTEXT_KEY = "sesshu:tenant"

logger = logging.getLogger(__name__)


class KeyUnavailable(Exception):
    """A tenant's data key could not be generated or unwrapped. ``transient``: the provider
    could not be reached or was overloaded (no answer, a timeout, throttling, its own
    failure), as opposed to a refusal (access denied, a disabled or deleted key, a wrapping
    that is not this tenant's)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


# KMS error codes that say "not now" rather than "no".
_KMS_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def is_transient(exc: BotoCoreError | ClientError) -> bool:
    """Whether KMS failed to answer (BotoCoreError: no connection, a timeout) or said "not
    now"; a ClientError with any other code is a refusal."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") in _KMS_TRANSIENT_CODES
    return True


@dataclass(frozen=True, slots=True)
class DataKey:
    # repr=False: a DataKey that ends up in a log line or a Sentry frame shows no key.
    plaintext: bytes = field(repr=False)
    wrapped: bytes

    def __post_init__(self) -> None:
        if len(self.plaintext) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")


class KeyProvider(Protocol):
    name: str

    def generate_data_key(self, *, tenant_code: str) -> DataKey: ...

    def unwrap_data_key(self, *, tenant_code: str, wrapped: bytes) -> bytes: ...


class LocalKeyProvider:
    """Wraps data keys with AES-256-GCM under a master key held in settings. Development only.

    The tenant code is the associated data, so a wrapped key moved to another tenant's row
    does not unwrap there.
    """

    name = "local"

    _VERSION = b"\x01"
    _NONCE_BYTES = 12

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != DATA_KEY_BYTES:
            raise ValueError(f"the local master key must be {DATA_KEY_BYTES} bytes")
        self._aead = AESGCM(master_key)

    def __repr__(self) -> str:
        return "LocalKeyProvider()"

    @classmethod
    def _associated_data(cls, tenant_code: str) -> bytes:
        return cls._VERSION + b"sesshu:data-key:" + tenant_code.encode("utf-8")

    def generate_data_key(self, *, tenant_code: str) -> DataKey:
        plaintext = AESGCM.generate_key(bit_length=256)
        return DataKey(
            plaintext=plaintext,
            wrapped=self.wrap_data_key(tenant_code=tenant_code, plaintext=plaintext),
        )

    def wrap_data_key(self, *, tenant_code: str, plaintext: bytes) -> bytes:
        """Wrap an existing data key (re-wrapping under a new master key)."""
        nonce = os.urandom(self._NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, self._associated_data(tenant_code))
        return self._VERSION + nonce + sealed

    def unwrap_data_key(self, *, tenant_code: str, wrapped: bytes) -> bytes:
        header = len(self._VERSION) + self._NONCE_BYTES
        if len(wrapped) != header + DATA_KEY_BYTES + 16 or wrapped[:1] != self._VERSION:
            raise KeyUnavailable(
                f"the wrapped data key of tenant {tenant_code} is not a local-provider key"
            )
        nonce = wrapped[1:header]
        try:
            return self._aead.decrypt(nonce, wrapped[header:], self._associated_data(tenant_code))
        except InvalidTag:
            raise KeyUnavailable(
                f"the wrapped data key of tenant {tenant_code} does not unwrap under the local "
                "master key (another tenant's key, another master key, or damaged)"
            ) from None


class KmsKeyProvider:
    """Data keys generated and unwrapped by AWS KMS under one customer-managed key.

    The tenant code is the KMS encryption context: KMS refuses to decrypt a wrapped key for
    any other tenant, and CloudTrail records which tenant each decrypt was for.
    """

    name = "aws-kms"

    def __init__(self, key_id: str, kms_client: KMSClient) -> None:
        if not key_id:
            raise ValueError("a KMS key id is required")
        self.key_id = key_id
        self._kms = kms_client

    def __repr__(self) -> str:
        return f"KmsKeyProvider(key_id={self.key_id!r})"

    @staticmethod
    def _context(tenant_code: str) -> dict[str, str]:
        return {ENCRYPTION_CONTEXT_KEY: tenant_code}

    def generate_data_key(self, *, tenant_code: str) -> DataKey:
        try:
            response = self._kms.generate_data_key(
                KeyId=self.key_id,
                KeySpec="AES_256",
                EncryptionContext=self._context(tenant_code),
            )
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnavailable(
                f"KMS did not generate a data key for tenant {tenant_code}: {_describe(exc)}"
            ) from exc
        return DataKey(plaintext=response["Plaintext"], wrapped=response["CiphertextBlob"])

    def wrap_data_key(self, *, tenant_code: str, plaintext: bytes) -> bytes:
        """Wrap an existing data key (re-wrapping under a new master key)."""
        try:
            response = self._kms.encrypt(
                KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=self._context(tenant_code)
            )
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnavailable(
                f"KMS did not wrap the data key of tenant {tenant_code}: {_describe(exc)}"
            ) from exc
        return bytes(response["CiphertextBlob"])

    def reencrypt_data_key(self, *, tenant_code: str, wrapped: bytes, source_key_id: str) -> bytes:
        """Re-wrap a data key wrapped under `source_key_id` under this key, inside KMS: the
        plain key never leaves it (needs kms:ReEncryptFrom on the source, ReEncryptTo here)."""
        try:
            response = self._kms.re_encrypt(
                CiphertextBlob=wrapped,
                SourceKeyId=source_key_id,
                SourceEncryptionContext=self._context(tenant_code),
                DestinationKeyId=self.key_id,
                DestinationEncryptionContext=self._context(tenant_code),
            )
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnavailable(
                f"KMS did not re-encrypt the data key of tenant {tenant_code}: {_describe(exc)}"
            ) from exc
        return bytes(response["CiphertextBlob"])

    def unwrap_data_key(self, *, tenant_code: str, wrapped: bytes) -> bytes:
        try:
            response = self._kms.decrypt(
                CiphertextBlob=wrapped,
                # Naming the key stops KMS from decrypting under any other key that a forged
                # blob might point at.
                KeyId=self.key_id,
                EncryptionContext=self._context(tenant_code),
            )
        except (BotoCoreError, ClientError) as exc:
            raise KeyUnavailable(
                f"KMS did not unwrap the data key of tenant {tenant_code}: {_describe(exc)}",
                transient=is_transient(exc),
            ) from exc
        plaintext: bytes = response["Plaintext"]
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyUnavailable(f"KMS returned a data key of the wrong size for {tenant_code}")
        return plaintext


def _describe(exc: BotoCoreError | ClientError) -> str:
    # The AWS error code and message name the failure; neither carries key material.
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    return str(exc)


def _decode_master_key(encoded: str) -> bytes:
    try:
        master_key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # The value itself is a secret: never echo it.
        raise ImproperlyConfigured("SESSHU_LOCAL_MASTER_KEY is not valid base64.") from None
    if len(master_key) != DATA_KEY_BYTES:
        raise ImproperlyConfigured(
            f"SESSHU_LOCAL_MASTER_KEY must be the base64 of {DATA_KEY_BYTES} bytes, "
            f"not {len(master_key)}."
        )
    return master_key


def key_provider() -> KeyProvider:
    """The key provider the settings ask for: SESSHU_KEY_PROVIDER = "local" or "aws-kms"."""
    provider_name = getattr(settings, "SESSHU_KEY_PROVIDER", None) or "local"
    if provider_name == LocalKeyProvider.name:
        encoded = getattr(settings, "SESSHU_LOCAL_MASTER_KEY", None)
        if not encoded:
            raise ImproperlyConfigured(
                'SESSHU_KEY_PROVIDER is "local" but SESSHU_LOCAL_MASTER_KEY is not set.'
            )
        return LocalKeyProvider(_decode_master_key(encoded))
    if provider_name == KmsKeyProvider.name:
        from sesshu import aws

        key_id = getattr(settings, "SESSHU_KMS_KEY_ID", None)
        if not key_id:
            raise ImproperlyConfigured(
                'SESSHU_KEY_PROVIDER is "aws-kms" but SESSHU_KMS_KEY_ID is not set.'
            )
        region = getattr(settings, "SESSHU_KMS_REGION", None) or getattr(
            settings, "AWS_REGION", None
        )
        return KmsKeyProvider(key_id, aws.client("kms", region=region))
    raise ImproperlyConfigured(
        f"SESSHU_KEY_PROVIDER is {provider_name!r}; use "
        f"{LocalKeyProvider.name!r} or {KmsKeyProvider.name!r}."
    )


@dataclass(slots=True)
class _CachedKey:
    plaintext: bytes = field(repr=False)
    expires_at: float
    # Past expires_at and until this moment, served only while the provider cannot be reached.
    stale_until: float


_CacheKey = tuple[str, bytes]


class DataKeyCache:
    """Unwrapped data keys kept in process memory for a short while.

    Unwrapping is a KMS round trip (and a KMS charge), far too slow to pay per request; but a
    plain key should not outlive its use for long either, so entries expire after `ttl`
    seconds and `forget` drops a decommissioned tenant's key at once.

    A miss unwraps outside the cache-wide lock, so one tenant's slow KMS call never blocks
    another tenant; a per-entry lock makes concurrent misses for the same key wait for a
    single unwrap instead of each calling KMS.

    If KMS cannot be reached when a key has expired (``KeyUnavailable.transient``: a
    regional hiccup, throttling on the morning booking opens), the expired key is served for
    up to ``grace`` seconds past its expiry, KMS being asked again every
    ``STALE_RETRY_SECONDS``: without it every login and booking of every municipality would
    fail five minutes into a KMS outage. A refusal (access denied, a disabled key) drops the
    key at once, as ``forget`` does.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[_CacheKey, _CachedKey] = {}
        self._unwrap_locks: dict[_CacheKey, threading.Lock] = {}
        # Bumped by forget(), so an unwrap that was in flight during it is not cached.
        self._generations: dict[str, int] = {}

    def get(
        self,
        *,
        tenant_code: str,
        wrapped: bytes,
        unwrap: Callable[[], bytes],
        ttl: float,
        grace: float = 0.0,
    ) -> bytes:
        key: _CacheKey = (tenant_code, hashlib.sha256(wrapped).digest())
        with self._lock:
            plaintext = self._fresh(key)
            if plaintext is not None:
                return plaintext
            unwrap_lock = self._unwrap_locks.setdefault(key, threading.Lock())
            generation = self._generations.get(tenant_code, 0)
        with unwrap_lock:
            with self._lock:
                plaintext = self._fresh(key)
                if plaintext is not None:
                    return plaintext
            try:
                plaintext = unwrap()
            except KeyUnavailable as failure:
                stale = self._stale(key, tenant_code, failure)
                if stale is None:
                    raise
                return stale
            if len(plaintext) != DATA_KEY_BYTES:
                raise KeyUnavailable(f"the data key of tenant {tenant_code} has the wrong size")
            if ttl > 0:
                with self._lock:
                    if self._generations.get(tenant_code, 0) == generation:
                        self._evict_expired()
                        now = self._clock()
                        self._entries[key] = _CachedKey(
                            plaintext, now + ttl, now + ttl + max(0.0, grace)
                        )
            return plaintext

    def _stale(self, key: _CacheKey, tenant_code: str, failure: KeyUnavailable) -> bytes | None:
        """The expired key, while the provider cannot be reached and the grace lasts; None
        (and the key dropped, on a refusal) otherwise."""
        with self._lock:
            entry = self._entries.get(key)
            now = self._clock()
            if entry is None or now >= entry.stale_until or not failure.transient:
                self._entries.pop(key, None)
                return None
            entry.expires_at = min(now + STALE_RETRY_SECONDS, entry.stale_until)
            left = entry.stale_until - now
        logger.warning(
            "the key provider cannot be reached (%s): tenant %s's data key is served from memory,"
            " expired, for %.0f s more at most",
            failure,
            tenant_code,
            left,
        )
        return entry.plaintext

    def forget(self, tenant_code: str) -> None:
        with self._lock:
            self._generations[tenant_code] = self._generations.get(tenant_code, 0) + 1
            for key in [key for key in self._entries if key[0] == tenant_code]:
                del self._entries[key]
            for key in [key for key in self._unwrap_locks if key[0] == tenant_code]:
                del self._unwrap_locks[key]

    def clear(self) -> None:
        with self._lock:
            for tenant_code in {key[0] for key in self._entries}:
                self._generations[tenant_code] = self._generations.get(tenant_code, 0) + 1
            self._entries.clear()
            self._unwrap_locks.clear()

    def __len__(self) -> int:
        with self._lock:
            self._evict_expired()
            return len(self._entries)

    def holds(self, tenant_code: str) -> bool:
        """Whether a plain key of this tenant is in the cache (an expired one kept for its
        grace included: it is still in memory)."""
        with self._lock:
            self._evict_expired()
            return any(key[0] == tenant_code for key in self._entries)

    def _fresh(self, key: _CacheKey) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if entry.expires_at <= now:
            if entry.stale_until <= now:
                del self._entries[key]
            return None
        return entry.plaintext

    def _evict_expired(self) -> None:
        # Runs on misses only; one entry per tenant keeps this a short loop.
        now = self._clock()
        for key in [key for key, entry in self._entries.items() if entry.stale_until <= now]:
            del self._entries[key]


_data_keys = DataKeyCache()


def data_key_for(*, tenant_code: str, wrapped: bytes, provider: KeyProvider | None = None) -> bytes:
    """The tenant's plain data key, unwrapped at most once per SESSHU_DATA_KEY_TTL seconds.

    Raises KeyUnavailable if the provider cannot unwrap it.
    """

    def unwrap() -> bytes:
        return (provider or key_provider()).unwrap_data_key(
            tenant_code=tenant_code, wrapped=wrapped
        )

    ttl = getattr(settings, "SESSHU_DATA_KEY_TTL", DEFAULT_DATA_KEY_TTL)
    grace = getattr(settings, "SESSHU_DATA_KEY_GRACE", DEFAULT_DATA_KEY_GRACE)
    return _data_keys.get(
        tenant_code=tenant_code, wrapped=wrapped, unwrap=unwrap, ttl=ttl, grace=grace
    )


def forget_data_key(tenant_code: str) -> None:
    """Drop the tenant's plain data key from this process (decommissioning)."""
    _data_keys.forget(tenant_code)


def data_key_cached(tenant_code: str) -> bool:
    """Whether this process holds the tenant's plain data key right now."""
    return _data_keys.holds(tenant_code)
