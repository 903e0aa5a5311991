"""The waiting room: residents come in at the rate the site can serve, in the order they came.

When booking opens, more residents arrive in a minute than the site can serve in ten (Yokohama,
3 May 2021: SECURITY.md). Without a limit every page slows down for everyone, and the call
centre, on the same servers, goes down with the site. So each municipality's resident pages
let in a set number of newcomers a minute (:func:`per_minute`; 0 turns the room off):

- A newcomer (no admission cookie) is given the next place in the municipality's queue, kept
  in the shared cache (one atomic Redis round trip). Places come in at the rate, in order:
  first come, first in. The rate is the municipality's own where the vendor set one
  (``Municipality.waiting_room_per_minute``), else the platform's; a change reaches everyone
  already waiting, since a place is a number in the queue and not a time.
- A place whose turn comes within ``GRACE_SECONDS`` is let in at once (an admission cookie,
  signed and bound to the municipality, valid for ``ADMISSION_MINUTES``), so a quiet site
  never shows the waiting room. Otherwise its holder gets a signed ticket naming the place
  (and when its turn was due at the time: see :func:`queue_wait`), and a page that reloads
  itself until the turn comes (no script: a refresh header) and says how long it is.
- Past ``SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES`` nobody is given a place: the page asks them
  to come back later, or to call, instead of queueing them for hours.

A ticket is spent when its holder comes in: its place is marked in the cache, and a copy of
it (a ticket passed around, kept from an earlier day) finds it spent and queues like any
newcomer. The holder's own browser may come back with it for ``SPENT_AGAIN_SECONDS`` (a page
reloaded before the admission cookie arrived). A ticket is good for as long as its cookie lasts.

A waiting page costs the server a signature check and one read of the cache, not a database
query. The console (the call centre, the venues) and the control plane are never held back:
the call centre keeps working when the resident site is full. Residents already in keep their
admission while they book.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import get_language
from django_tenants.utils import schema_context

from audit.middleware import client_ip
from booking.models import BookingPolicy
from booking.resident import throttle
from booking.resident.call_centre import call_centre_context
from sesshu.logs import answered_on_purpose, host_kind
from sesshu.outages import CACHE_DOWN, cache_down
from tenants.db import current_schema
from tenants.models import Municipality

ADMITTED_COOKIE = "sesshu_admitted"
TICKET_COOKIE = "sesshu_ticket"
_SALT = "sesshu.waiting_room"
_TICKET_SALT = "sesshu.waiting_room.place"
# A newcomer whose turn is at most this far off comes in at once: small bursts never wait.
GRACE_SECONDS = 5
# How long an admission lasts: long enough to log in, choose and book, at the pace of an
# 80-year-old resident; a page seen renews it, once this many minutes after the last renewal
# (not on every page: signing and setting the cookie is most of the room's cost per page).
ADMISSION_MINUTES = 30
RENEW_AFTER_MINUTES = 5
# The page reloads itself at least this often, so the estimate it shows stays current. Who
# came together would reload together, every so often, in one burst that the residents let in
# would queue behind: a long wait's reloads are spread over the last third of this, by place.
RELOAD_AT_MOST_SECONDS = 30
_RELOAD_SPREAD = RELOAD_AT_MOST_SECONDS // 3
# ?waiting=by-hand: the waiting page without the reload, for those it would disturb.
BY_HAND_PARAMETER = "waiting"
BY_HAND = "by-hand"
# When the queue cannot be reached (Redis down), the page reloads itself this often.
UNREACHABLE_RETRY = 20
# A spent ticket still lets its holder in this long after it let them in: a page reloaded
# before its answer (and the admission cookie) arrived.
SPENT_AGAIN_SECONDS = 60
# While residents wait, the places one network may take in a window (see queue_join).
PLACES_PER_NETWORK = 30
NETWORK_WINDOW_SECONDS = 10 * 60


def per_minute(municipality: Municipality | None = None) -> int:
    """Newcomers a minute let into ``municipality``'s pages: its own rate, if the vendor set
    one, else the platform's (``SESSHU_WAITING_ROOM_PER_MINUTE``). 0: no waiting room."""
    own = getattr(municipality, "waiting_room_per_minute", None)
    if own is not None:
        return int(own)
    return int(getattr(settings, "SESSHU_WAITING_ROOM_PER_MINUTE", 0))


def max_wait_seconds() -> int:
    return 60 * int(getattr(settings, "SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES", 120))


def _now() -> float:
    return time.time()


def _queue_key(schema_name: str) -> str:
    return f"waiting-room:{schema_name}:queue"


def _spent_key(schema_name: str, place: int) -> str:
    return f"waiting-room:{schema_name}:spent:{place}"


def _network_key(schema_name: str, network: str) -> str:
    # Keyed digest: the cache holds no address.
    return f"waiting-room:{schema_name}:network:{throttle.digest(network)}"


_local_lock = threading.Lock()


@contextmanager
def _under(schema_name: str) -> Iterator[None]:
    """The cache's keys carry the connection's schema (``django_tenants.cache.make_key``):
    a municipality's queue is reached under that municipality's schema, whoever asks (the
    control plane asks from the public one). Nothing is queried in it."""
    if current_schema() == schema_name:
        yield
    else:
        with schema_context(schema_name):
            yield


def queue_join(
    schema_name: str, *, now: float, per_second: float, horizon: float, network: str | None = None
) -> tuple[int, float] | str:
    """The municipality's next place in the queue, taken, and the seconds until its turn:
    ``(issued - served) / per_second``, where ``served`` (the places whose turn has come)
    grows at ``per_second`` and never past the places given, so a quiet time banks nothing.
    "full", taking nothing, when that is more than ``horizon`` seconds.

    While residents wait (a turn past the grace), one network (an address, an IPv6 /64) is
    given at most ``PLACES_PER_NETWORK`` places in ``NETWORK_WINDOW_SECONDS``; past that it is
    "limited", taking nothing, so that a few machines cannot fill the queue for everyone.
    Generous, for the residents behind one mobile carrier's shared address.

    Production's cache does it in one atomic Redis script
    (``sesshu.redis_cache.SharedClientRedisCache.queue_join``); any other cache (a development
    machine's memory) under a lock of this process."""
    key = _queue_key(schema_name)
    limit_key = None if network is None else _network_key(schema_name, network)
    with _under(schema_name):
        return _join(key, now=now, per_second=per_second, horizon=horizon, limit_key=limit_key)


def _join(
    key: str, *, now: float, per_second: float, horizon: float, limit_key: str | None
) -> tuple[int, float] | str:
    keep = int(horizon) + 3600
    join = getattr(cache, "queue_join", None)
    if join is not None:
        joined: tuple[int, float] | str = join(
            key,
            now=now,
            per_second=per_second,
            horizon=horizon,
            keep_seconds=keep,
            limit_key=limit_key,
            limit=PLACES_PER_NETWORK,
            limit_after=GRACE_SECONDS,
            limit_seconds=NETWORK_WINDOW_SECONDS,
        )
        return joined
    with _local_lock:
        state = cache.get(key) or (0, 0.0, now)
        issued, at = state[0], max(state[2], now)
        served = _served(state, now, per_second)
        wait = (issued - served) / per_second
        if wait > horizon:
            return "full"
        if limit_key is not None and wait > GRACE_SECONDS:
            # A window from the first place counted, as on Redis.
            added = cache.add(limit_key, 1, timeout=NETWORK_WINDOW_SECONDS)
            counted = 1 if added else int(cache.incr(limit_key))
            if counted > PLACES_PER_NETWORK:
                return "limited"
        cache.set(key, (issued + 1, served, at), timeout=keep)
        return issued + 1, wait


def _queue_state(schema_name: str) -> tuple[int, float, float] | None:
    """The municipality's queue as (issued, served, at), or None where there is none."""
    state_of = getattr(cache, "queue_state", None)
    with _under(schema_name):
        if state_of is not None:
            state: tuple[int, float, float] | None = state_of(_queue_key(schema_name))
            return state
        return cache.get(_queue_key(schema_name))


def _served(state: tuple[int, float, float], now: float, per_second: float) -> float:
    issued, served, at = state
    return min(float(issued), served + max(0.0, now - at) * per_second)


def queue_wait(
    schema_name: str, place: int, *, now: float, per_second: float, due: float | None = None
) -> float:
    """The seconds until ``place``'s turn at the present rate, 0 once it has come.

    A place the queue never gave (its state lost with the cache, or expired) waits until
    ``due``, when its turn was due as its ticket was given: the residents waiting when Redis
    lost the queue come in as they were due, neither sent to the back nor let in all at once
    (tens of thousands of them, on the morning booking opens). Newcomers meanwhile start a
    new queue, so for as long as the old one had to run, residents come in at up to twice
    the rate. Without ``due`` (a ticket signed before it was kept): at once."""
    state = _queue_state(schema_name)
    if state is None or place > state[0]:
        return 0.0 if due is None else max(0.0, due - now)
    return max(0.0, (place - 1 - _served(state, now, per_second)) / per_second)


def ticket_spend(schema_name: str, place: int, *, now: float) -> bool:
    """Spend the ticket for ``place`` as its holder comes in: False if it was spent before
    (longer ago than ``SPENT_AGAIN_SECONDS``), by whoever held a copy. One atomic add."""
    key = _spent_key(schema_name, place)
    with _under(schema_name):
        if cache.add(key, now, timeout=ticket_seconds()):
            return True
        spent_at = cache.get(key)
    return spent_at is None or now - float(spent_at) <= SPENT_AGAIN_SECONDS


def ticket_seconds() -> int:
    """How long a ticket is good for: the longest wait, and an admission's time after it."""
    return max_wait_seconds() + ADMISSION_MINUTES * 60


@dataclass(frozen=True)
class QueueNow:
    """A municipality's waiting room at a glance, for the control plane and the call centre:
    its rate, and how many residents hold a place whose turn has not come, the last of them
    ``minutes`` away (counts only: the queue holds nothing else). Some may have gone away."""

    per_minute: int
    residents: int
    minutes: int
    # The queue could not be read (Redis unreachable): newcomers are held, nobody is let in.
    unreachable: bool = False

    @property
    def per_minute_text(self) -> str:
        return f"{self.per_minute:,}"

    @property
    def residents_text(self) -> str:
        """How many wait, as said with 約: exact under 100, else to two significant figures
        (299 is 約300; the queue moves every second, and some have gone away)."""
        residents = self.residents
        if residents >= 100:
            step = 10 ** (len(str(residents)) - 2)
            residents = (residents + step // 2) // step * step
        return f"{residents:,}"


def queue_now(municipality: Municipality, *, now: float | None = None) -> QueueNow:
    rate = per_minute(municipality)
    try:
        state = _queue_state(municipality.schema_name) if rate > 0 else None
    except CACHE_DOWN as error:
        cache_down("the waiting room's queue (shown as paused)", error)
        return QueueNow(rate, 0, 0, unreachable=True)
    if state is None:
        return QueueNow(rate, 0, 0)
    per_second = rate / 60
    waiting = state[0] - _served(state, _now() if now is None else now, per_second)
    seconds = (waiting - 1) / per_second
    if seconds <= GRACE_SECONDS:  # those come in at once: nobody waits
        return QueueNow(rate, 0, 0)
    return QueueNow(rate, math.ceil(waiting), max(1, math.ceil(seconds / 60)))


def _sign(schema_name: str, value: float, *, salt: str = _SALT) -> str:
    return signing.dumps([schema_name, round(value, 3)], salt=salt, compress=False)


@dataclass(frozen=True)
class Ticket:
    place: int
    # When the place's turn was due, at the rate when the ticket was given (None: a ticket
    # signed before this was kept). Read only when the queue is lost (queue_wait).
    due: float | None


def _sign_ticket(schema_name: str, place: int, *, due: float) -> str:
    return signing.dumps([schema_name, place, round(due)], salt=_TICKET_SALT, compress=False)


def _read_ticket(value: str | None, schema_name: str) -> Ticket | None:
    """The ticket this site signed for this municipality, or None (absent, tampered,
    another municipality's, older than a ticket lasts)."""
    if not value:
        return None
    try:
        signed = signing.loads(value, salt=_TICKET_SALT, max_age=ticket_seconds())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(signed, list) or len(signed) not in (2, 3) or signed[0] != schema_name:
        return None
    place, due = signed[1], (signed[2] if len(signed) == 3 else None)
    if not isinstance(place, (int, float)) or not isinstance(due, (int, float, type(None))):
        return None
    return Ticket(int(place), None if due is None else float(due))


def _read(value: str | None, schema_name: str) -> float | None:
    """The end of an admission this site signed for this municipality, or None (absent,
    tampered, another municipality's)."""
    if not value:
        return None
    try:
        name, number = signing.loads(value, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if name != schema_name or not isinstance(number, (int, float)):
        return None
    return float(number)


class WaitingRoomMiddleware:
    """Lets residents into a municipality's pages at its rate (:func:`per_minute`), in order
    (off when 0). Innermost in settings.MIDDLEWARE: the tenant is known, the language
    chosen, and the security headers go on the waiting page too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if host_kind(request) != "resident" or request.path.startswith("/i18n/"):
            # The language switch stays open (it redirects back, and costs no query).
            return self.get_response(request)
        municipality = request.tenant  # type: ignore[attr-defined]
        rate = per_minute(municipality)
        if rate <= 0 or municipality.status == Municipality.Status.INCIDENT:
            # In incident mode nobody logs in: waiting would only lead to its notice.
            return self.get_response(request)
        schema_name = municipality.schema_name
        now = _now()
        admitted_until = _read(request.COOKIES.get(ADMITTED_COOKIE), schema_name)
        if admitted_until is not None and admitted_until > now:
            if admitted_until - now > (ADMISSION_MINUTES - RENEW_AFTER_MINUTES) * 60:
                return self.get_response(request)  # renewed a short while ago
            return self._let_in(request, schema_name, now)
        per_second = rate / 60
        ticket = _read_ticket(request.COOKIES.get(TICKET_COOKIE), schema_name)
        try:
            if ticket is not None:
                given = ticket.place
                seconds = queue_wait(
                    schema_name, given, now=now, per_second=per_second, due=ticket.due
                )
                if seconds > GRACE_SECONDS:
                    return self._wait(request, given, seconds, new_ticket=None)
                if ticket_spend(schema_name, given, now=now):
                    return self._let_in(request, schema_name, now)
                # A copy of a ticket that let its holder in: this browser is a newcomer.
            joined = queue_join(
                schema_name,
                now=now,
                per_second=per_second,
                horizon=max_wait_seconds(),
                network=throttle.client_network(client_ip(request)),
            )
            if isinstance(joined, str):  # "full" or "limited": no place given
                return self._come_back_later(request)
            given, seconds = joined
        except CACHE_DOWN as error:
            # Letting everyone in would fill the site with admissions that outlast the
            # outage by half an hour: they wait, their place (if any) kept, and try again.
            cache_down("the waiting room's queue (newcomers wait)", error)
            return self._queue_unreachable(request)
        if seconds <= GRACE_SECONDS:
            return self._let_in(request, schema_name, now)
        ticket_given = _sign_ticket(schema_name, given, due=now + seconds)
        return self._wait(request, given, seconds, new_ticket=ticket_given)

    def _let_in(self, request: HttpRequest, schema_name: str, now: float) -> HttpResponse:
        response = self.get_response(request)
        until = now + ADMISSION_MINUTES * 60
        response.set_cookie(
            ADMITTED_COOKIE,
            _sign(schema_name, until),
            max_age=ADMISSION_MINUTES * 60,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
        if TICKET_COOKIE in request.COOKIES:
            response.delete_cookie(TICKET_COOKIE, samesite="Lax")
        return response

    @staticmethod
    def _wait(
        request: HttpRequest, place: int, seconds: float, *, new_ticket: str | None
    ) -> HttpResponse:
        """The waiting page; with ``new_ticket`` (signed), the ticket cookie set."""
        response = _page(
            request,
            {"minutes": max(1, math.ceil(seconds / 60)), "come_back_later": False},
            retry_after=min(
                RELOAD_AT_MOST_SECONDS - place % (_RELOAD_SPREAD + 1),
                max(1, math.ceil(seconds - GRACE_SECONDS)),
            ),
        )
        if new_ticket is not None:
            response.set_cookie(
                TICKET_COOKIE,
                new_ticket,
                # Kept as long as the longest wait: a lowered rate makes the wait longer.
                max_age=ticket_seconds(),
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

    @staticmethod
    def _come_back_later(request: HttpRequest) -> HttpResponse:
        return _page(request, {"minutes": None, "come_back_later": True}, retry_after=None)

    @staticmethod
    def _queue_unreachable(request: HttpRequest) -> HttpResponse:
        return _page(
            request, {"minutes": None, "come_back_later": False}, retry_after=UNREACHABLE_RETRY
        )


# The waiting pages rendered so far, by municipality, name, call centre, language, minutes
# left and whether a place was given: a few hundred at most per municipality and language.
_PAGES: dict[tuple[object, ...], str] = {}
_PAGES_KEPT = 4096


def _page(
    request: HttpRequest, context: dict[str, object], *, retry_after: int | None
) -> HttpResponse:
    """503, rendered once and kept: everyone waiting asks for it every few seconds, so it
    costs a dictionary lookup, no template and no database query (the municipality and its
    call centre come from the per-process caches of the tenant middleware and the policy)."""
    tenant = request.tenant  # type: ignore[attr-defined]
    phone = BookingPolicy.current().call_centre_phone
    # A page that reloads itself moves a screen reader back to its top each time (WCAG
    # F41): the resident may ask for one that does not, with a link to check by hand.
    by_hand = retry_after is not None and request.GET.get(BY_HAND_PARAMETER) == BY_HAND
    key = (
        tenant.schema_name,
        tenant.name,
        phone,
        get_language(),
        context["minutes"],
        context["come_back_later"],
        by_hand,
    )
    body = _PAGES.get(key)
    if body is None:
        if len(_PAGES) >= _PAGES_KEPT:
            _PAGES.clear()
        body = _PAGES[key] = render_to_string(
            "booking/resident/waiting_room.html",
            {
                **context,
                "site_name": tenant.name,
                **call_centre_context(phone),
                "by_hand": by_hand,
                # Relative to the page's own path, whichever page the resident asked for.
                "by_hand_url": f"?{BY_HAND_PARAMETER}={BY_HAND}",
            },
        )
    response = HttpResponse(body, status=503)
    if by_hand:
        response["Retry-After"] = str(retry_after)
    elif retry_after is not None:
        # A browser without script reloads itself (the Refresh header); clients that retry
        # read Retry-After.
        response["Refresh"] = str(retry_after)
        response["Retry-After"] = str(retry_after)
    else:
        response["Retry-After"] = "600"
    response["Cache-Control"] = "no-store"
    return answered_on_purpose(response)  # waiting is the room working, not a fault
