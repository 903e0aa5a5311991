"""A local AWS (moto server) for tests that go through real boto3 calls.

Register in tests/conftest.py with ``pytest_plugins = ["tests.aws_fixtures"]``.

- ``moto_server``: one server per test session on 127.0.0.1 and a free port; its endpoint URL.
- ``local_aws``: per test, points ``sesshu.aws.client`` at that server (AWS_ENDPOINT_URL, fake
  credentials, ap-northeast-1) and starts from an empty moto state.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from django.test import override_settings
from moto.server import ThreadedMotoServer

from sesshu import aws

REGION = "ap-northeast-1"
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    # Port 0: the OS picks a free port, so parallel runs on one machine never collide.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint_url: str) -> None:
    # Only ever the local moto server started below.
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


@pytest.fixture
def local_aws(moto_server: str) -> Iterator[str]:
    reset_moto(moto_server)
    aws.clear_clients()
    with override_settings(
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID=FAKE_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET_ACCESS_KEY,
    ):
        try:
            yield moto_server
        finally:
            aws.clear_clients()
