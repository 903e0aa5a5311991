"""The web process's warm-up (sesshu.warmup): done in gunicorn's master before the workers
fork, so it must compile every one of the project's templates and import every view without
opening a connection of any kind."""

from __future__ import annotations

import socket

import pytest
from django.template import engines

from sesshu.warmup import project_templates, warm_up


def test_the_project_templates_are_found_and_only_they() -> None:
    names = project_templates()
    assert "base.html" in names
    assert any(name.startswith("booking/resident/") for name in names)
    assert not any(name.startswith("admin/") for name in names)  # Django's own are left
    assert len(names) == len(set(names)) > 50


def test_the_warm_up_compiles_every_template_and_connects_to_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No database (pytest-django refuses any query in a test without the db fixture) and no
    socket of any other kind."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the warm-up opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    warm_up()
    # The cached loader (DEBUG off, as in production and here) holds every template now.
    cached = engines["django"].engine.template_loaders[0].get_template_cache
    assert set(project_templates()) <= set(cached)
