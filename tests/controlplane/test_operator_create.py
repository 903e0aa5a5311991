"""``manage.py operator_create``: a vendor operator with a password and a TOTP device."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.platform.models import PlatformEvent
from tests.controlplane.conftest import PLATFORM_HOST, login, token_for


def test_it_creates_an_operator_who_can_log_in(db: None) -> None:
    out = io.StringIO()
    call_command(
        "operator_create", username="demo-operator", email="demo@vendor.example.jp", stdout=out
    )
    output = out.getvalue()
    password = re.search(r"Password \(shown once\): (\S+)", output)
    assert password
    assert "otpauth://totp/" in output
    user = User.objects.get(username="demo-operator")
    assert user.is_staff and not user.is_superuser
    assert password.group(1) not in user.password  # stored as a hash only
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    assert device.config_url in output
    event = PlatformEvent.objects.get(action="controlplane.operator_created")
    assert (event.actor_kind, event.target_id) == ("system", str(user.pk))

    from django.test import Client

    client = Client(HTTP_HOST=PLATFORM_HOST)
    response = login(
        client, username="demo-operator", password=password.group(1), token=token_for(device)
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_it_reads_the_password_from_stdin(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long chosen passphrase 77\n"))
    out = io.StringIO()
    call_command("operator_create", username="piped-operator", password_stdin=True, stdout=out)
    assert "a long chosen passphrase 77" not in out.getvalue()
    assert "Password" not in out.getvalue()
    assert User.objects.get(username="piped-operator").check_password("a long chosen passphrase 77")


def test_it_refuses_a_weak_password_and_a_taken_name(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("12345\n"))
    with pytest.raises(CommandError):
        call_command("operator_create", username="weak-operator", password_stdin=True)
    assert not User.objects.filter(username="weak-operator").exists()
    call_command("operator_create", username="taken", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("operator_create", username="taken", stdout=io.StringIO())
