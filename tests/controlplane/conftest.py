"""The control plane's cast: a vendor operator (password + TOTP), a platform client, and
helpers to log in through the real form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.test.client import Client as ClientType
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.chain import Actor
from controlplane.services import CreatedOperator, operator_create

PLATFORM_HOST = "platform.localhost"
OPERATOR_USERNAME = "vendor-operator"
OPERATOR_PASSWORD = "correct horse battery staple 2021"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Login throttles live in the cache; no test inherits another's failures."""
    cache.clear()
    yield
    cache.clear()


def token_for(device: TOTPDevice) -> str:
    device.refresh_from_db()
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return str(value).zfill(device.digits)


def wrong_token_for(device: TOTPDevice) -> str:
    right = int(token_for(device))
    return str((right + 500_000) % 1_000_000).zfill(device.digits)


@pytest.fixture
def operator(db: None) -> CreatedOperator:
    return operator_create(
        username=OPERATOR_USERNAME,
        email="operator@vendor.example.jp",
        password=OPERATOR_PASSWORD,
        actor=Actor.system("tests"),
    )


@pytest.fixture
def platform_client(db: None) -> ClientType:
    return Client(HTTP_HOST=PLATFORM_HOST)


def login(
    client: ClientType,
    *,
    username: str,
    password: str,
    token: str,
    ip: str = "127.0.0.1",
) -> HttpResponse:
    client.get("/login/", REMOTE_ADDR=ip)
    return client.post(
        "/login/",
        {"username": username, "password": password, "token": token},
        REMOTE_ADDR=ip,
    )


@pytest.fixture
def operator_client(platform_client: ClientType, operator: CreatedOperator) -> ClientType:
    response = login(
        platform_client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
    )
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == "/"
    return platform_client


ERROR_SUMMARY = re.compile(r'<div class="error-summary" role="alert">(.*?)</div>', re.S)


def error_summary(response: HttpResponse) -> str:
    match = ERROR_SUMMARY.search(response.content.decode())
    assert match, "the page shows no error summary"
    return " ".join(match.group(1).split())
