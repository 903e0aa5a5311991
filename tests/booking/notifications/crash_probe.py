"""Loaded only into the crash test's worker (``celery --include``).

It gives the worker what the test process has as overrides (the production backend, the
local LINE fake, a short claim lease, the test's queue), and kills the worker with SIGKILL
right after a provider accepted a message and before the outbox row is marked: the crash
the protocol must survive. Only the first send crashes (the marker file is consumed).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from django.conf import settings

from booking.notifications import providers
from sesshu.celery import app

settings.SESSHU_NOTIFICATION_BACKEND = "aws"
settings.SESSHU_LINE_API_BASE = os.environ["TEST_LINE_API_BASE"]
settings.SESSHU_NOTIFICATION_EMAIL_FROM = os.environ["TEST_EMAIL_FROM"]
settings.SESSHU_NOTIFICATION_CLAIM_SECONDS = int(os.environ["TEST_CLAIM_SECONDS"])
# Tasks the worker queues (the sweeper's dispatches) go to the queue it consumes.
app.conf.task_routes = {"booking.*": {"queue": os.environ["TEST_QUEUE"]}}
app.amqp.flush_routes()


def _crash_after(send: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def send_then_die(self: Any, message: Any) -> Any:
        result = send(self, message)
        try:
            os.unlink(os.environ["TEST_CRASH_MARKER"])
        except FileNotFoundError:
            return result
        os.kill(os.getpid(), signal.SIGKILL)  # the provider has it; the row says "sending"
        return result

    return send_then_die


providers.LineProvider.send = _crash_after(providers.LineProvider.send)  # type: ignore[method-assign]
providers.SesProvider.send = _crash_after(providers.SesProvider.send)  # type: ignore[method-assign]
providers.SnsProvider.send = _crash_after(providers.SnsProvider.send)  # type: ignore[method-assign]
