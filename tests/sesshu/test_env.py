from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from sesshu import env


def test_a_secret_can_come_from_a_file(monkeypatch, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n", encoding="utf-8")
    monkeypatch.delenv("SESSHU_X", raising=False)
    monkeypatch.setenv("SESSHU_X_FILE", str(secret))
    assert env.env_str("SESSHU_X") == "s3cr3t"


def test_both_a_value_and_a_file_is_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SESSHU_X", "a")
    monkeypatch.setenv("SESSHU_X_FILE", str(tmp_path / "f"))
    with pytest.raises(ImproperlyConfigured, match="SESSHU_X or SESSHU_X_FILE"):
        env.env_str("SESSHU_X")


def test_an_unreadable_secret_file_names_the_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SESSHU_X", raising=False)
    monkeypatch.setenv("SESSHU_X_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="SESSHU_X_FILE"):
        env.env_str("SESSHU_X")


@pytest.mark.parametrize(
    ("function", "value", "message"),
    [
        (lambda: env.env_bool("SESSHU_X", False), "maybe", "not a boolean"),
        (lambda: env.env_int("SESSHU_X", 1), "ten", "not a whole number"),
        (lambda: env.env_int("SESSHU_X", 1, minimum=5), "2", "below the minimum"),
        (lambda: env.env_choice("SESSHU_X", ("a", "b"), "a"), "c", "must be one of"),
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(monkeypatch, function, value, message):
    monkeypatch.setenv("SESSHU_X", value)
    with pytest.raises(ImproperlyConfigured, match=f"SESSHU_X.*{message}"):
        function()


def test_a_required_variable_that_is_missing_is_named(monkeypatch) -> None:
    monkeypatch.delenv("SESSHU_X", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SESSHU_X is required"):
        env.env_str("SESSHU_X")


def test_database_urls_with_a_socket_and_with_a_host() -> None:
    assert env.parse_database_url("U", "postgresql://app:p%40ss@db.internal:6432/sesshu") == {
        "NAME": "sesshu",
        "USER": "app",
        "PASSWORD": "p@ss",
        "HOST": "db.internal",
        "PORT": "6432",
        "OPTIONS": {},
    }
    parsed = env.parse_database_url("U", "postgresql://sesshu@/sesshu?host=/run/pg&sslmode=require")
    assert (parsed["HOST"], parsed["OPTIONS"]) == ("/run/pg", {"sslmode": "require"})
    with pytest.raises(ImproperlyConfigured, match="postgresql://"):
        env.parse_database_url("DATABASE_URL", "mysql://x/y")
