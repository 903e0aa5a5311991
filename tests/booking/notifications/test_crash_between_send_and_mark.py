"""A real Celery worker on Redis is killed (SIGKILL) after the provider accepted a message and
before the outbox row was marked. A second worker takes over through the sweeper.

- LINE (idempotency key): the message is asked for again with the same X-Line-Retry-Key,
  LINE answers "already accepted", and the row ends ``sent`` — one delivery, marked once.
- SES / SNS (no idempotency key): the claim stops a second send; the row ends
  ``unconfirmed`` with its reason for staff — one delivery, never a second.

The rows are committed (the worker is another process), so this module creates them outside
the test transaction and deletes them afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import (
    Booking,
    ContactPreference,
    LineChannel,
    Notification,
    Slot,
    Venue,
    Voucher,
)
from booking.services.notifications import line_channel_configure, notification_enqueue
from booking.tasks_notifications import notification_send, notifications_sweep
from sesshu import aws
from sesshu.celery import app
from tenants.models import Municipality
from tests.aws_fixtures import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, REGION
from tests.booking.notifications.conftest import (
    EMAIL_FROM,
    LINE_CHANNEL_A,
    LINE_SECRET_A,
    LINE_TOKEN_A,
    LINE_USER,
    ses_sent,
    sns_sent,
)
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)
from tests.booking.notifications.line_fake import LineFake, LineServer
from tests.tenants.test_celery_isolation import _database_url, _redis_url

ROOT = Path(__file__).resolve().parents[3]
CLAIM_SECONDS = 2
pytestmark = [pytest.mark.celery_worker, pytest.mark.slow]


class Worker:
    def __init__(self, env: dict[str, str], queue: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "sesshu.celery",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-Q",
                queue,
                "--include",
                "booking.tasks_notifications,tests.booking.notifications.crash_probe",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_death(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output or ""


@pytest.fixture
def crash_world(
    django_db_setup: None, django_db_blocker: Any, local_aws: str
) -> Iterator[dict[str, Any]]:
    """LINE fake, moto, a queue, the worker's environment, and a cleanup of committed rows."""
    fake = LineFake(
        access_token=LINE_TOKEN_A, channel_id=LINE_CHANNEL_A, channel_secret=LINE_SECRET_A
    )
    queue = f"sesshu-notify-test-{os.getpid()}"
    marker = Path(tempfile.mkdtemp()) / "crash-once"
    with (
        LineServer(fake),
        override_settings(
            SESSHU_NOTIFICATION_BACKEND="aws",
            SESSHU_LINE_API_BASE=fake.url,
            SESSHU_NOTIFICATION_EMAIL_FROM=EMAIL_FROM,
        ),
    ):
        aws.client("ses").verify_email_identity(EmailAddress=EMAIL_FROM)
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": _redis_url(),
            "SESSHU_TESTING": "1",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": local_aws,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "TEST_LINE_API_BASE": fake.url,
            "TEST_EMAIL_FROM": EMAIL_FROM,
            "TEST_CLAIM_SECONDS": str(CLAIM_SECONDS),
            "TEST_QUEUE": queue,
            "TEST_CRASH_MARKER": str(marker),
            "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        }
        previous = {key: app.conf.get(key) for key in ("broker_url", "task_always_eager")}
        app.conf.update(
            broker_url=_redis_url(),
            task_always_eager=False,
            task_routes={"booking.*": {"queue": queue}},
        )
        app.amqp.flush_routes()
        _forget_broker_connections()
        workers: list[Worker] = []
        created: list[int] = []
        try:
            with django_db_blocker.unblock():
                yield {
                    "fake": fake,
                    "marker": marker,
                    "start_worker": lambda: workers.append(Worker(env, queue)) or workers[-1],
                    "queue": queue,
                    "created": created,
                }
        finally:
            outputs = [worker.stop() for worker in workers]
            app.conf.update(task_routes=None, **previous)
            app.amqp.flush_routes()
            _forget_broker_connections()
            with django_db_blocker.unblock():
                _delete_committed_rows()
            _forget_queue(queue)
            for output in outputs:
                if "Traceback" in output:
                    print(output)


def _forget_broker_connections() -> None:
    # Earlier tests ran without a broker; a publisher pool cached then would still point
    # there. The next publish builds one from the broker URL now configured.
    app._pool = None
    app.amqp._producer_pool = None


def _forget_queue(queue: str) -> None:
    """Drop the test queue and the killed worker's unacknowledged message, which Redis would
    otherwise put back on a queue nobody reads once its visibility timeout ran out."""
    import json

    import redis

    broker = redis.Redis.from_url(_redis_url())
    broker.delete(queue)
    for tag, raw in broker.hgetall("unacked").items():
        _message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


def _delete_committed_rows() -> None:
    tenant = Municipality.objects.get(code="132110")
    with tenant_context(tenant):
        Notification.objects.all().delete()
        Booking.objects.all().delete()
        Slot.objects.all().delete()
        Venue.objects.all().delete()
        ContactPreference.objects.all().delete()
        Voucher.objects.filter(voucher_number__startswith="88").delete()
        LineChannel.objects.all().delete()


def _publish(task: Any, *args: Any, queue: str) -> None:
    with app.connection_for_write(_redis_url()) as broker:
        task.apply_async(args=args, queue=queue, connection=broker)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _row(pk: int) -> Notification:
    return Notification.objects.get(pk=pk)


@pytest.mark.parametrize("channel", ["line", "email", "sms"])
def test_a_sender_killed_between_sending_and_marking_neither_loses_nor_doubles(
    crash_world: dict[str, Any], channel: str
) -> None:
    fake: LineFake = crash_world["fake"]
    tenant = Municipality.objects.get(code="132110")
    with tenant_context(tenant):
        line_channel_configure(
            login_channel_id=LINE_CHANNEL_A,
            login_channel_secret=LINE_SECRET_A,
            messaging_access_token=LINE_TOKEN_A,
            actor=Actor.system("tests"),
            ip=None,
        )
        resident = make_voucher(number=f"88{os.getpid() % 10**8:08d}")
        set_contacts(
            resident,
            email="hanako@example.jp" if channel == "email" else None,
            phone="09012345678" if channel == "sms" else None,
            line_user_id=LINE_USER if channel == "line" else None,
        )
        crash_world["marker"].touch()
        # The booking transaction writes the row; its commit publishes the sender.
        with transaction.atomic():
            booking = make_booking(resident, make_slot())
            (row,) = notification_enqueue(kind="booking_created", booking=booking)

        first = crash_world["start_worker"]()
        assert first.wait_for_death(timeout=90) == -9  # SIGKILL after the provider's answer
        killed = _row(row.pk)
        assert (killed.status, killed.attempts, killed.sent_at) == ("sending", 1, None)
        delivered = {
            "line": lambda: len(fake.delivered),
            "email": lambda: len(ses_sent()),
            "sms": lambda: len(sns_sent()),
        }[channel]
        assert delivered() == 1

        # The lease runs out; the next beat's sweep (on a new worker) finds the row.
        _wait_for(lambda: timezone.now() > killed.claimed_until, CLAIM_SECONDS + 5, "the lease")
        crash_world["start_worker"]()
        _publish(notifications_sweep, queue=crash_world["queue"])
        _wait_for(lambda: _row(row.pk).status != "sending", 90, "the sweep")
        after = _row(row.pk)
        # Once more, as a redelivered task would: nothing changes.
        _publish(notification_send, row.pk, queue=crash_world["queue"])
        _publish(notifications_sweep, queue=crash_world["queue"])
        time.sleep(2)
        assert _row(row.pk).status == after.status and _row(row.pk).attempts == after.attempts

    assert delivered() == 1  # never sent twice
    if channel == "line":
        # Asked again with the same key, LINE said "already accepted": marked sent, once.
        assert (after.status, after.attempts) == ("sent", 2)
        assert after.provider_message_id == fake.delivered[0].request_id
        assert [r["retry_key"] for r in fake.requests] == [str(row.idempotency_key)] * 2
    else:
        # No idempotency key at SES/SNS: not asked again; staff see why.
        assert after.status == "unconfirmed" and after.attempts == 1
        assert after.last_error.startswith("claim.expired")
    if channel == "email":
        quota = aws.client("ses").get_send_quota()
        assert quota["SentLast24Hours"] == 1
