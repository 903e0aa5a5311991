from __future__ import annotations

import base64
import logging
import os
import socket
import threading
import time

import pytest
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from sesshu import aws
from tenants import keys
from tenants.keys import (
    DataKey,
    DataKeyCache,
    KeyUnavailable,
    KmsKeyProvider,
    LocalKeyProvider,
    data_key_for,
    forget_data_key,
    key_provider,
)

TENANT_A = "131016"
TENANT_B = "011002"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingProvider:
    """The real local provider, counting how often the cache falls through to it."""

    name = "counting"

    def __init__(self) -> None:
        self.inner = LocalKeyProvider(os.urandom(32))
        self.unwraps = 0

    def generate_data_key(self, *, tenant_code: str) -> DataKey:
        return self.inner.generate_data_key(tenant_code=tenant_code)

    def unwrap_data_key(self, *, tenant_code: str, wrapped: bytes) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap_data_key(tenant_code=tenant_code, wrapped=wrapped)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(keys, "_data_keys", DataKeyCache(clock=fake))
    return fake


# --- the local provider -------------------------------------------------------------------


def test_the_local_provider_wraps_and_unwraps() -> None:
    provider = LocalKeyProvider(os.urandom(32))

    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    assert len(data_key.plaintext) == 32
    assert data_key.plaintext not in data_key.wrapped
    assert provider.unwrap_data_key(tenant_code=TENANT_A, wrapped=data_key.wrapped) == (
        data_key.plaintext
    )


def test_each_generated_key_is_new() -> None:
    provider = LocalKeyProvider(os.urandom(32))

    first = provider.generate_data_key(tenant_code=TENANT_A)
    second = provider.generate_data_key(tenant_code=TENANT_A)

    assert first.plaintext != second.plaintext


def test_the_local_provider_refuses_another_tenants_key() -> None:
    provider = LocalKeyProvider(os.urandom(32))
    wrapped_for_a = provider.generate_data_key(tenant_code=TENANT_A).wrapped

    with pytest.raises(KeyUnavailable, match=TENANT_B):
        provider.unwrap_data_key(tenant_code=TENANT_B, wrapped=wrapped_for_a)


def test_the_local_provider_refuses_another_master_keys_wrapping() -> None:
    wrapped = LocalKeyProvider(os.urandom(32)).generate_data_key(tenant_code=TENANT_A).wrapped

    with pytest.raises(KeyUnavailable):
        LocalKeyProvider(os.urandom(32)).unwrap_data_key(tenant_code=TENANT_A, wrapped=wrapped)


@pytest.mark.parametrize("damage", ["flip", "truncate", "version"])
def test_the_local_provider_refuses_a_damaged_wrapping(damage: str) -> None:
    provider = LocalKeyProvider(os.urandom(32))
    wrapped = bytearray(provider.generate_data_key(tenant_code=TENANT_A).wrapped)
    if damage == "flip":
        wrapped[20] ^= 0x01
    elif damage == "truncate":
        del wrapped[-1]
    else:
        wrapped[0] = 0x02

    with pytest.raises(KeyUnavailable):
        provider.unwrap_data_key(tenant_code=TENANT_A, wrapped=bytes(wrapped))


def test_the_local_provider_needs_a_256_bit_master_key() -> None:
    with pytest.raises(ValueError):
        LocalKeyProvider(os.urandom(16))


def test_key_material_stays_out_of_reprs() -> None:
    master_key = os.urandom(32)
    provider = LocalKeyProvider(master_key)
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    shown = repr(data_key) + repr(provider) + str(data_key)

    assert data_key.plaintext.hex() not in shown
    assert repr(data_key.plaintext) not in shown
    assert repr(master_key) not in shown


# --- choosing the provider from settings --------------------------------------------------


def test_the_local_provider_is_built_from_settings() -> None:
    master_key = os.urandom(32)
    wrapped = LocalKeyProvider(master_key).generate_data_key(tenant_code=TENANT_A)

    with override_settings(
        SESSHU_KEY_PROVIDER="local", SESSHU_LOCAL_MASTER_KEY=base64.b64encode(master_key).decode()
    ):
        provider = key_provider()

    assert provider.name == "local"
    assert provider.unwrap_data_key(tenant_code=TENANT_A, wrapped=wrapped.wrapped) == (
        wrapped.plaintext
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SESSHU_KEY_PROVIDER": "local", "SESSHU_LOCAL_MASTER_KEY": None}, "not set"),
        ({"SESSHU_KEY_PROVIDER": "local", "SESSHU_LOCAL_MASTER_KEY": "%%%"}, "base64"),
        (
            {
                "SESSHU_KEY_PROVIDER": "local",
                "SESSHU_LOCAL_MASTER_KEY": base64.b64encode(b"short").decode(),
            },
            "32 bytes",
        ),
        ({"SESSHU_KEY_PROVIDER": "aws-kms", "SESSHU_KMS_KEY_ID": ""}, "SESSHU_KMS_KEY_ID"),
        ({"SESSHU_KEY_PROVIDER": "vault"}, "'vault'"),
    ],
    ids=["no-master-key", "not-base64", "short-master-key", "no-kms-key", "unknown-provider"],
)
def test_a_bad_key_configuration_fails_loudly(overrides: dict[str, object], message: str) -> None:
    with override_settings(**overrides):
        with pytest.raises(ImproperlyConfigured, match=message):
            key_provider()


def test_the_kms_provider_refuses_a_region_outside_tokyo() -> None:
    with override_settings(
        SESSHU_KEY_PROVIDER="aws-kms",
        SESSHU_KMS_KEY_ID="alias/sesshu",
        SESSHU_KMS_REGION="us-east-1",
    ):
        with pytest.raises(ImproperlyConfigured, match="us-east-1"):
            key_provider()


# --- the plain-key cache ------------------------------------------------------------------


def test_a_data_key_is_unwrapped_once_and_then_served_from_memory(clock: Clock) -> None:
    provider = CountingProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    first = data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
    again = data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)

    assert first == again == data_key.plaintext
    assert provider.unwraps == 1


def test_a_cached_data_key_expires_after_the_ttl(clock: Clock) -> None:
    provider = CountingProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    with override_settings(SESSHU_DATA_KEY_TTL=60):
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        clock.now += 59
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        assert provider.unwraps == 1

        clock.now += 1
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        assert provider.unwraps == 2


def test_without_a_ttl_setting_keys_are_kept_five_minutes(clock: Clock) -> None:
    provider = CountingProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    with override_settings():
        if hasattr(settings, "SESSHU_DATA_KEY_TTL"):
            delattr(settings, "SESSHU_DATA_KEY_TTL")
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        clock.now += 299
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        assert provider.unwraps == 1

        clock.now += 1
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        assert provider.unwraps == 2


def test_expired_keys_of_other_tenants_are_dropped_on_the_next_miss(clock: Clock) -> None:
    provider = CountingProvider()
    key_a = provider.generate_data_key(tenant_code=TENANT_A)
    key_b = provider.generate_data_key(tenant_code=TENANT_B)

    with override_settings(SESSHU_DATA_KEY_TTL=60, SESSHU_DATA_KEY_GRACE=120):
        data_key_for(tenant_code=TENANT_A, wrapped=key_a.wrapped, provider=provider)
        clock.now += 61
        data_key_for(tenant_code=TENANT_B, wrapped=key_b.wrapped, provider=provider)
        assert len(keys._data_keys) == 2  # A's, expired, kept for its grace
        clock.now += 120
        data_key_for(tenant_code=TENANT_B, wrapped=key_b.wrapped, provider=provider)

    assert len(keys._data_keys) == 1


def test_forget_drops_only_that_tenants_key(clock: Clock) -> None:
    provider = CountingProvider()
    key_a = provider.generate_data_key(tenant_code=TENANT_A)
    key_b = provider.generate_data_key(tenant_code=TENANT_B)
    data_key_for(tenant_code=TENANT_A, wrapped=key_a.wrapped, provider=provider)
    data_key_for(tenant_code=TENANT_B, wrapped=key_b.wrapped, provider=provider)

    forget_data_key(TENANT_A)
    data_key_for(tenant_code=TENANT_A, wrapped=key_a.wrapped, provider=provider)
    data_key_for(tenant_code=TENANT_B, wrapped=key_b.wrapped, provider=provider)

    assert provider.unwraps == 3


def test_the_cache_is_keyed_by_tenant_as_well_as_wrapping(clock: Clock) -> None:
    provider = CountingProvider()
    key_a = provider.generate_data_key(tenant_code=TENANT_A)
    data_key_for(tenant_code=TENANT_A, wrapped=key_a.wrapped, provider=provider)

    # A's wrapped key presented as B's must go to the provider, which refuses it.
    with pytest.raises(KeyUnavailable):
        data_key_for(tenant_code=TENANT_B, wrapped=key_a.wrapped, provider=provider)


def test_a_failed_unwrap_is_not_cached(clock: Clock) -> None:
    provider = CountingProvider()
    foreign = LocalKeyProvider(os.urandom(32)).generate_data_key(tenant_code=TENANT_A)

    for _ in range(2):
        with pytest.raises(KeyUnavailable):
            data_key_for(tenant_code=TENANT_A, wrapped=foreign.wrapped, provider=provider)

    assert provider.unwraps == 2


def test_an_unwrap_in_flight_during_forget_is_not_cached() -> None:
    cache = DataKeyCache(clock=Clock())
    plaintext = os.urandom(32)

    def unwrap_while_decommissioning() -> bytes:
        cache.forget(TENANT_A)
        return plaintext

    got = cache.get(
        tenant_code=TENANT_A, wrapped=b"w", unwrap=unwrap_while_decommissioning, ttl=300
    )

    assert got == plaintext
    assert len(cache) == 0


def test_concurrent_misses_unwrap_once() -> None:
    cache = DataKeyCache()
    calls = 0
    started = threading.Event()
    plaintext = os.urandom(32)

    def slow_unwrap() -> bytes:
        nonlocal calls
        calls += 1
        started.set()
        time.sleep(0.05)
        return plaintext

    results: list[bytes] = []

    def worker() -> None:
        results.append(cache.get(tenant_code=TENANT_A, wrapped=b"w", unwrap=slow_unwrap, ttl=300))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert calls == 1
    assert results == [plaintext] * 8


def test_a_zero_ttl_disables_the_cache(clock: Clock) -> None:
    provider = CountingProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    with override_settings(SESSHU_DATA_KEY_TTL=0):
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)

    assert provider.unwraps == 2


def test_data_key_for_uses_the_configured_provider(clock: Clock) -> None:
    master_key = os.urandom(32)
    data_key = LocalKeyProvider(master_key).generate_data_key(tenant_code=TENANT_A)

    with override_settings(
        SESSHU_KEY_PROVIDER="local", SESSHU_LOCAL_MASTER_KEY=base64.b64encode(master_key).decode()
    ):
        assert data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped) == data_key.plaintext


class FlakyProvider(CountingProvider):
    """The counting provider, made to fail on demand as KMS does: ``failing`` None (it
    answers), "transient" (unreachable, throttled) or "refused" (access denied)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: str | None = None

    def unwrap_data_key(self, *, tenant_code: str, wrapped: bytes) -> bytes:
        if self.failing is not None:
            self.unwraps += 1
            raise KeyUnavailable("KMS: not now", transient=self.failing == "transient")
        return super().unwrap_data_key(tenant_code=tenant_code, wrapped=wrapped)


def test_while_kms_cannot_be_reached_an_expired_key_is_served_for_its_grace(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    provider = FlakyProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    def key() -> bytes:
        return data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)

    with override_settings(SESSHU_DATA_KEY_TTL=60, SESSHU_DATA_KEY_GRACE=300):
        assert key() == data_key.plaintext
        provider.failing = "transient"
        clock.now += 61  # expired: KMS is asked, fails, and the key is served from memory
        assert key() == data_key.plaintext
        assert provider.unwraps == 2
        clock.now += keys.STALE_RETRY_SECONDS - 1  # not asked again before the retry
        assert key() == data_key.plaintext
        assert provider.unwraps == 2
        clock.now += 1
        assert key() == data_key.plaintext
        assert provider.unwraps == 3
        provider.failing = None  # KMS is back: the next ask unwraps, a fresh TTL begins
        clock.now += keys.STALE_RETRY_SECONDS
        assert key() == data_key.plaintext
        assert provider.unwraps == 4

        provider.failing = "transient"
        clock.now += 60 + 300  # past the expiry and the whole grace
        with pytest.raises(KeyUnavailable):
            key()
    assert "served from memory" in caplog.text
    assert data_key.plaintext.hex() not in caplog.text


def test_a_refusal_drops_the_expired_key_at_once(clock: Clock) -> None:
    provider = FlakyProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)
    with override_settings(SESSHU_DATA_KEY_TTL=60, SESSHU_DATA_KEY_GRACE=300):
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        clock.now += 61
        provider.failing = "refused"  # a disabled key, a revoked grant
        with pytest.raises(KeyUnavailable):
            data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        assert not keys.data_key_cached(TENANT_A)
        provider.failing = "transient"  # and an outage after it does not bring it back
        with pytest.raises(KeyUnavailable):
            data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)


def test_a_forgotten_key_is_not_served_through_an_outage(clock: Clock) -> None:
    provider = FlakyProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)
    with override_settings(SESSHU_DATA_KEY_TTL=60, SESSHU_DATA_KEY_GRACE=300):
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        forget_data_key(TENANT_A)  # decommissioned
        provider.failing = "transient"
        with pytest.raises(KeyUnavailable):
            data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)


def test_without_a_grace_an_outage_fails_as_soon_as_the_key_expires(clock: Clock) -> None:
    provider = FlakyProvider()
    data_key = provider.generate_data_key(tenant_code=TENANT_A)
    with override_settings(SESSHU_DATA_KEY_TTL=60, SESSHU_DATA_KEY_GRACE=0):
        data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)
        clock.now += 60
        provider.failing = "transient"
        with pytest.raises(KeyUnavailable):
            data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped, provider=provider)


# --- AWS KMS, through real boto3 calls against a local moto server ------------------------


@pytest.fixture
def kms_key_id(local_aws: str) -> str:
    return aws.client("kms").create_key(Description="sesshu test")["KeyMetadata"]["KeyId"]


def test_kms_generates_a_data_key_that_unwraps_for_its_tenant(kms_key_id: str) -> None:
    provider = KmsKeyProvider(kms_key_id, aws.client("kms"))

    data_key = provider.generate_data_key(tenant_code=TENANT_A)

    assert len(data_key.plaintext) == 32
    assert data_key.plaintext not in data_key.wrapped
    assert provider.unwrap_data_key(tenant_code=TENANT_A, wrapped=data_key.wrapped) == (
        data_key.plaintext
    )


def test_kms_refuses_to_unwrap_a_key_for_another_tenant(kms_key_id: str) -> None:
    provider = KmsKeyProvider(kms_key_id, aws.client("kms"))
    wrapped_for_a = provider.generate_data_key(tenant_code=TENANT_A).wrapped

    with pytest.raises(KeyUnavailable, match=f"{TENANT_B}.*InvalidCiphertextException"):
        provider.unwrap_data_key(tenant_code=TENANT_B, wrapped=wrapped_for_a)


def test_kms_refuses_a_damaged_wrapping(kms_key_id: str) -> None:
    provider = KmsKeyProvider(kms_key_id, aws.client("kms"))
    wrapped = bytearray(provider.generate_data_key(tenant_code=TENANT_A).wrapped)
    wrapped[-1] ^= 0x01

    with pytest.raises(KeyUnavailable):
        provider.unwrap_data_key(tenant_code=TENANT_A, wrapped=bytes(wrapped))


def test_kms_reports_an_unknown_key_as_unavailable(local_aws: str) -> None:
    provider = KmsKeyProvider("alias/no-such-key", aws.client("kms"))

    with pytest.raises(KeyUnavailable, match="NotFoundException"):
        provider.generate_data_key(tenant_code=TENANT_A)


def test_the_kms_provider_is_built_from_settings_and_caches_through_data_key_for(
    kms_key_id: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with override_settings(
        SESSHU_KEY_PROVIDER="aws-kms",
        SESSHU_KMS_KEY_ID=kms_key_id,
        SESSHU_KMS_REGION="ap-northeast-1",
    ):
        provider = key_provider()
        assert provider.name == "aws-kms"
        data_key = provider.generate_data_key(tenant_code=TENANT_A)

        assert data_key_for(tenant_code=TENANT_A, wrapped=data_key.wrapped) == data_key.plaintext

    assert data_key.plaintext.hex() not in caplog.text
    assert base64.b64encode(data_key.plaintext).decode() not in caplog.text


def test_kms_out_of_reach_is_transient_and_a_refusal_is_not(kms_key_id: str) -> None:
    provider = KmsKeyProvider(kms_key_id, aws.client("kms"))
    wrapped = provider.generate_data_key(tenant_code=TENANT_A).wrapped

    with pytest.raises(KeyUnavailable, match="InvalidCiphertextException") as refused:
        provider.unwrap_data_key(tenant_code=TENANT_B, wrapped=wrapped)
    assert refused.value.transient is False

    aws.clear_clients()
    with socket.socket() as probe:  # a port nobody listens on: connections refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with override_settings(AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed}"):
        unreachable = KmsKeyProvider(kms_key_id, aws.client("kms"))
        with pytest.raises(KeyUnavailable) as out_of_reach:
            unreachable.unwrap_data_key(tenant_code=TENANT_A, wrapped=wrapped)
    assert out_of_reach.value.transient is True
    aws.clear_clients()


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("ThrottlingException", True),
        ("KMSInternalException", True),
        ("DependencyTimeoutException", True),
        ("AccessDeniedException", False),
        ("DisabledException", False),
        ("KMSInvalidStateException", False),
        ("NotFoundException", False),
        ("IncorrectKeyException", False),
    ],
)
def test_which_kms_answers_are_not_now_and_which_are_no(code: str, transient: bool) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "from KMS"}}, "Decrypt")
    assert keys.is_transient(error) is transient
