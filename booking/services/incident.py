"""Incident response for one municipality (SECURITY.md "Incident response", Kodaira 2018).

- :func:`incident_start`: the admin's one action. In one transaction: every resident password
  is forgotten (each resident sets a new one at their next login), every resident session
  ends, the notice for the resident site is stored, a notice is queued in the outbox for every
  resident who consented to messages, and the municipality's status becomes ``incident`` —
  which closes resident logins and registrations (the resident services refuse any status but
  ``active``) while the console keeps working.
- :func:`incident_end`: back to ``active``.
- :func:`console_networks_replace`: where the console may be used from.
- :func:`trail_report_rows`: breach scope from the audit trail — whose data was read, by whom,
  when.

The ``Municipality`` row lives in the public schema, which the municipality's database role
cannot write. The status is switched in the same transaction from the public context
(``schema_context("public")``, the restricted public role), and the platform's own trail
records it too, so the vendor sees that a municipality entered incident mode.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_tenants.utils import get_public_schema_name, schema_context

from audit import record
from audit.chain import Actor
from audit.models import Event
from booking.models import (
    Booking,
    ConsoleNetwork,
    ContactPreference,
    Incident,
    Notification,
    NotificationKind,
    ResidentCredential,
    StaffMember,
    Voucher,
)
from booking.resident.services.web_sessions import resident_sessions_end_all
from booking.services.bulk_reads import (
    BULK_READ_ACTIONS,
    ReadResident,
    VoucherRanges,
    bulk_read_residents,
)
from booking.services.notifications import notifications_dispatch_on_commit
from booking.spreadsheet import safe_cell
from tenants.db import current_municipality
from tenants.hosts import municipality_hosts_forget
from tenants.models import Municipality

JAPAN = ZoneInfo("Asia/Tokyo")
Status = Municipality.Status
Mode = Municipality.LoginMode


class IncidentRefused(Exception):
    """The action does not fit the municipality's current state; ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def _admin(staff: StaffMember) -> Actor:
    if staff.role != StaffMember.Role.ADMIN:
        raise PermissionDenied("incident response is for the municipality's admins")
    return Actor(Actor.STAFF, str(staff.user_id))


# --- Incident mode ------------------------------------------------------------------------


def residents_have_passwords(municipality: Municipality) -> bool:
    """Whether the municipality's residents log in with a password incident mode forgets
    (every mode but voucher number and birth date alone)."""
    return municipality.login_mode != Mode.VOUCHER_DOB


# What a resident does to log in once the site reopens, by login mode: (said while it is
# closed, said once it has reopened). Birth-date logins change nothing and are not here.
_LOGIN_AFTER_REOPENING = {
    Mode.ACCOUNT: (
        gettext_lazy("再開後は、接種券番号と生年月日で、アカウントの登録をもう一度お願いします。"),
        gettext_lazy(
            "ログインするには、接種券番号と生年月日で、アカウントの登録をもう一度お願いします。"
        ),
    ),
    Mode.VOUCHER_DOB_THEN_PASSWORD: (
        gettext_lazy(
            "再開後は、接種券番号と生年月日でログインし、新しいパスワードを設定してください。"
        ),
        gettext_lazy(
            "ログインの際は、接種券番号と生年月日でログインし、新しいパスワードを設定してください。"
        ),
    ),
    Mode.VOUCHER_CODE: (
        gettext_lazy(
            "再開後のログインには新しい認証コードが必要です。コールセンターでお伝えします"
            "（ご本人確認のうえ）。"
        ),
        gettext_lazy(
            "ログインには新しい認証コードが必要です。コールセンターにお電話ください"
            "（ご本人確認のうえ、お伝えします）。"
        ),
    ),
}


def _login_after_reopening(municipality: Municipality, *, reopened: bool) -> str:
    """What a resident does to log in once the site reopens, in the municipality's login
    mode (incident mode forgets every password: ``_forget_resident_passwords``); said
    while it is closed (``reopened`` False) or once it has reopened. "" when nothing changes
    for them (birth date logins)."""
    words = _LOGIN_AFTER_REOPENING.get(municipality.login_mode)
    return str(words[reopened]) if words else ""


def default_notice(municipality: Municipality) -> str:
    notice = _(
        "現在、%(name)sのワクチン接種予約サイトは、セキュリティ上の確認のため受付を停止しています。"
        "ご予約・変更・取消はコールセンターで承ります。ご予約済みの方は、接種券をお持ちいただければ"
        "接種会場で受付できます。"
    ) % {"name": municipality.name}
    return notice + _login_after_reopening(municipality, reopened=False)


def default_reopening_notice(municipality: Municipality) -> str:
    notice = _(
        "%(name)sのワクチン接種予約サイトの受付を再開しました。"
        "ご不便をおかけし、申し訳ありませんでした。"
    ) % {"name": municipality.name}
    after = _login_after_reopening(municipality, reopened=True)
    if not after:
        return notice
    return notice + after + _("ご不明な点はコールセンターへお問い合わせください。")


def _valid_notice(notice: str) -> str:
    notice = (notice or "").strip()
    if len(notice) > Incident.NOTICE_MAX_LENGTH:
        raise ValidationError(
            _("お知らせの文面を%(max)d文字以内で入力してください。")
            % {"max": Incident.NOTICE_MAX_LENGTH}
        )
    return notice


def _forget_resident_passwords(mode: str) -> int:
    """Every resident sets a new password at their next login (see
    ``booking.services.callcentre.callcentre_password_reset`` for how, per login mode)."""
    now = timezone.now()
    if mode == Mode.ACCOUNT:
        deleted, _by_model = ResidentCredential.objects.all().delete()
        return deleted
    return ResidentCredential.objects.exclude(password="").update(
        password="", password_set_at=None, updated_at=now
    )


# One outbox row per consented channel of every active voucher, written by one statement: a
# municipality may have hundreds of thousands of residents to tell. The dedupe key makes a
# second run for the same incident a no-op.
_QUEUE_NOTICES = """
INSERT INTO {notification} (
    kind, channel, voucher_id, booking_id, dedupe_key, context, status, idempotency_key,
    attempts, provider, provider_message_id, last_error, created_at, updated_at
)
SELECT
    %(kind)s, ch.channel, cp.voucher_id, NULL,
    %(dedupe)s || ':' || cp.voucher_id || ':' || ch.channel,
    jsonb_build_object('notice', %(notice)s::text),
    'pending', gen_random_uuid(), 0, '', '', '', now(), now()
FROM {preference} cp
JOIN {voucher} v ON v.id = cp.voucher_id AND v.status = 'active'
CROSS JOIN LATERAL (
    VALUES
        ('email', cp.email_consented_at IS NOT NULL AND cp.email IS NOT NULL),
        ('sms', cp.sms_consented_at IS NOT NULL AND cp.phone IS NOT NULL),
        ('line', cp.line_consented_at IS NOT NULL AND cp.line_user_id IS NOT NULL)
) AS ch (channel, consented)
WHERE ch.consented
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


def _queue_notices(incident: Incident, notice: str, *, reopening: bool = False) -> int:
    quote = connection.ops.quote_name
    statement = _QUEUE_NOTICES.format(
        notification=quote(Notification._meta.db_table),
        preference=quote(ContactPreference._meta.db_table),
        voucher=quote(Voucher._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "kind": NotificationKind.INCIDENT_NOTICE.value,
                "dedupe": f"incident{'-reopened' if reopening else ''}:{incident.pk}",
                "notice": notice,
            },
        )
        created = [row[0] for row in cursor.fetchall()]
    notifications_dispatch_on_commit(created)
    return len(created)


def _set_status(
    municipality: Municipality, *, to: str, allowed_from: str, action: str, staff: StaffMember
) -> bool:
    """Switch the public row's status from the public context; False if it was not
    ``allowed_from``. Also records the change in the platform's trail, as the municipality's
    console's, naming the staff member by their account's id in that municipality."""
    with schema_context(get_public_schema_name()):
        changed = Municipality.objects.filter(pk=municipality.pk, status=allowed_from).update(
            status=to, updated_at=timezone.now()
        )
        if changed:
            record(
                action=action,
                actor=Actor.system(f"municipal-console staff:{staff.user_id}"),
                target=municipality,
                details={"from": allowed_from, "to": to},
            )
    if changed:
        municipality.status = to
        municipality_hosts_forget()  # this process serves the new status at once
    return bool(changed)


def _end_incident_under_suspension(municipality: Municipality) -> None:
    with schema_context(get_public_schema_name()):
        Municipality.objects.filter(
            pk=municipality.pk, status=Status.SUSPENDED, suspended_from=Status.INCIDENT
        ).update(suspended_from=Status.ACTIVE, updated_at=timezone.now())


def incident_start(*, staff: StaffMember, notice: str, ip: str | None) -> Incident:
    """Put the resident site into incident mode (see the module's docstring)."""
    actor = _admin(staff)
    municipality: Municipality = current_municipality()
    notice = _valid_notice(notice)
    if not notice:
        raise ValidationError(
            _("お知らせの文面を%(max)d文字以内で入力してください。")
            % {"max": Incident.NOTICE_MAX_LENGTH}
        )
    if municipality.status != Status.ACTIVE:
        raise IncidentRefused(
            "not_active",
            _("現在の状態（%(status)s）では、インシデントモードを開始できません。")
            % {"status": municipality.get_status_display()},
        )
    with transaction.atomic():
        if Incident.objects.select_for_update().filter(ended_at__isnull=True).exists():
            raise IncidentRefused("already_open", _("インシデントモードは既に開始されています。"))
        incident = Incident.objects.create(
            notice=notice, started_at=timezone.now(), started_by_id=staff.user_id
        )
        incident.passwords_reset = _forget_resident_passwords(municipality.login_mode)
        incident.sessions_ended = resident_sessions_end_all()
        incident.notices_queued = _queue_notices(incident, incident.notice)
        incident.save(update_fields=["passwords_reset", "sessions_ended", "notices_queued"])
        if not _set_status(
            municipality,
            to=Status.INCIDENT,
            allowed_from=Status.ACTIVE,
            action="municipality.incident_started",
            staff=staff,
        ):
            # Suspended by the platform meanwhile: nothing of the above happens.
            raise IncidentRefused(
                "not_active", _("市区町村の状態が変わったため、開始できませんでした。")
            )
        record(
            action="incident.started",
            actor=actor,
            target=incident,
            ip=ip,
            details={
                "passwords_reset": incident.passwords_reset,
                "sessions_ended": incident.sessions_ended,
                "notices_queued": incident.notices_queued,
                "login_mode": municipality.login_mode,
                # What residents were told, kept where it cannot be changed unseen.
                "notice": incident.notice,
            },
        )
    return incident


def incident_end(
    *, staff: StaffMember, ip: str | None, reopening_notice: str = ""
) -> tuple[Incident | None, int]:
    """Reopen the resident site: status back to ``active``, the notice taken down. With a
    ``reopening_notice``, the residents told of the incident (every consented channel) are
    told that the site is open again. Returns the incident and the notices queued.

    Passwords stay forgotten: residents set new ones as they log in again.
    """
    actor = _admin(staff)
    municipality: Municipality = current_municipality()
    reopening_notice = _valid_notice(reopening_notice)
    queued = 0
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(ended_at__isnull=True).first()
        reopened = _set_status(
            municipality,
            to=Status.ACTIVE,
            allowed_from=Status.INCIDENT,
            action="municipality.incident_ended",
            staff=staff,
        )
        if not reopened:
            # Suspended by the platform meanwhile: its resumption is to reopen the site.
            _end_incident_under_suspension(municipality)
        if incident is None and not reopened:
            raise IncidentRefused("not_open", _("インシデントモードではありません。"))
        if incident is not None:
            incident.ended_at = timezone.now()
            incident.ended_by_id = staff.user_id
            incident.save(update_fields=["ended_at", "ended_by"])
            if reopened and reopening_notice:
                queued = _queue_notices(incident, reopening_notice, reopening=True)
        record(
            action="incident.ended",
            actor=actor,
            target=incident,
            ip=ip,
            # A platform suspension meanwhile leaves the status alone: say so.
            details={
                "status_reopened": reopened,
                "status": municipality.status,
                "notices_queued": queued,
                **({"reopening_notice": reopening_notice} if reopening_notice else {}),
            },
        )
    return incident, queued


# --- Allowed networks -------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """A CIDR (or a single address) as written by an admin; raises ValueError.

    Host bits set (``192.0.2.10/24``) are refused rather than silently dropped: the admin
    probably meant something else.
    """
    return ipaddress.ip_network(text.strip(), strict=True)


def address_in(ip: str | None, networks: Iterable[str]) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for text in networks:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


@dataclass(frozen=True)
class NetworkEntry:
    network: str
    label: str = ""


def network_list_parse(text: str) -> list[NetworkEntry]:
    """One network per line, optionally followed by a label: ``203.0.113.0/24 本庁舎``.
    Blank lines and lines starting with ``#`` are skipped. Raises ValidationError naming
    the lines that are not networks."""
    entries: list[NetworkEntry] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate((text or "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cidr, _sep, label = stripped.partition(" ")
        try:
            network = str(parse_network(cidr))
        except ValueError:
            errors.append(
                _("%(line)d行目「%(value)s」はネットワーク（例：203.0.113.0/24）ではありません。")
                % {"line": number, "value": cidr[:50]}
            )
            continue
        if network not in seen:
            seen.add(network)
            entries.append(NetworkEntry(network, label.strip()[:60]))
    if errors:
        raise ValidationError(errors)
    return entries


def console_networks_replace(
    *,
    staff: StaffMember,
    entries: Sequence[NetworkEntry],
    current_ip: str | None,
    ip: str | None,
) -> list[ConsoleNetwork]:
    """Replace the console's allowed networks with ``entries`` (empty: no restriction).

    Refuses (ValidationError) a list that does not include ``current_ip``, the address the
    admin is saving from: they would lock themselves out with their own save.
    """
    actor = _admin(staff)
    networks = [str(parse_network(entry.network)) for entry in entries]
    if networks and not address_in(current_ip, networks):
        raise ValidationError(
            _(
                "いまお使いのアドレス（%(ip)s）が含まれていないため、保存すると"
                "この画面に戻れなくなります。このアドレスを含むネットワークを加えてください。"
            )
            % {"ip": current_ip or _("不明")}
        )
    with transaction.atomic():
        ConsoleNetwork.objects.all().delete()
        saved = ConsoleNetwork.objects.bulk_create(
            ConsoleNetwork(network=network, label=entry.label)
            for network, entry in zip(networks, entries, strict=True)
        )
        record(
            action="console.networks_replaced",
            actor=actor,
            ip=ip,
            details={"networks": networks},
        )
    return saved


def network_of(ip: str | None) -> str:
    """A suggestion for the admin: the /24 (IPv4) or /64 (IPv6) around an address."""
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# --- Breach scope: whose data was read, by whom, when ---------------------------------------

# Events that show a resident's data to someone. Besides these, any action named "*.viewed",
# "*_viewed" or "*_revealed" (other parts of the console follow that naming) counts, and so
# do the bulk reads of files and exports (``booking.services.bulk_reads``).
READ_ACTIONS = (
    "callcentre.personal_data_revealed",
    "callcentre.resident_viewed",
    "callcentre.searched",
    "resident.login_succeeded",
    *BULK_READ_ACTIONS,
)
_READ_SUFFIXES = (".viewed", "_viewed", "_revealed")

REPORT_HEADER = [
    "日時",
    "操作",
    "閲覧者の種別",
    "閲覧者ID",
    "接種券ID",
    "接種券番号",
    "理由",
    "IPアドレス",
    "監査記録番号",
    "備考",
    # For a reader without the codes: the action's name, the member of staff's e-mail, and
    # the reason's name.
    "操作の名前",
    "閲覧者のメールアドレス",
    "理由の説明",
    # The operator's own words for a reveal (sealed in the trail, opened for the report).
    "メモ",
    # What the event was about, as the trail writes it (a venue's list of the day names
    # its venue: booking.venue:3), to find it in the trail without its record number.
    "対象",
]


def _read_events(start: datetime, end: datetime) -> Iterator[Event]:
    condition = Q(action__in=READ_ACTIONS)
    for suffix in _READ_SUFFIXES:
        condition |= Q(action__endswith=suffix)
    events = Event.objects.filter(condition, occurred_at__gte=start, occurred_at__lt=end)
    yield from events.order_by("seq").iterator(chunk_size=2000)


def _residents_of(event: Event, bookings: dict[int, int]) -> Iterable[ReadResident]:
    if event.action in BULK_READ_ACTIONS:
        return bulk_read_residents(event)  # a codes file's million vouchers: one at a time
    if event.target_type == "booking.voucher" and event.target_id.isdigit():
        return [ReadResident(int(event.target_id))]
    if event.target_type == "booking.booking" and event.target_id.isdigit():
        voucher_id = bookings.get(int(event.target_id))
        return [ReadResident(voucher_id)] if voucher_id is not None else []
    listed = event.details.get("vouchers") if isinstance(event.details, dict) else None
    if isinstance(listed, list):
        return [ReadResident(value) for value in listed if isinstance(value, int)]
    voucher = event.details.get("voucher") if isinstance(event.details, dict) else None
    return [ReadResident(voucher)] if isinstance(voucher, int) else []


_Item = TypeVar("_Item")


def _chunks(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _report_rows(
    start: datetime,
    end: datetime,
    describe: Callable[[str], str],
    describe_reason: Callable[[str, str], str],
    note: Callable[[dict[str, Any]], str],
) -> Iterator[list[Any]]:
    """The report's rows, in the trail's order, a batch of residents at a time: one event
    may name a million (a codes file), and each batch's voucher numbers are looked up in
    one query. ``describe``: an action's name in words; ``describe_reason``: a reason's
    (for its action); ``note``: an event's note opened ("" for none)."""
    for chunk in _chunks(_read_events(start, end), 2000):
        booking_ids = [
            int(event.target_id)
            for event in chunk
            if event.target_type == "booking.booking" and event.target_id.isdigit()
        ]
        bookings = dict(Booking.objects.filter(pk__in=booking_ids).values_list("id", "voucher_id"))
        staff_ids = {
            int(event.actor_id)
            for event in chunk
            if event.actor_kind == Actor.STAFF and event.actor_id.isdigit()
        }
        emails = {
            str(pk): email
            for pk, email in get_user_model()
            .objects.filter(pk__in=staff_ids)
            .values_list("pk", "email")
        }
        shown = (
            (event, resident) for event in chunk for resident in _residents_of(event, bookings)
        )
        shown_event: Event | None = None
        when = reason = memo = ""
        for batch in _chunks(shown, _RESIDENTS_PER_QUERY):
            numbers = _voucher_numbers(
                {resident.voucher_id for _event, resident in batch if resident.voucher_id}
            )
            for event, resident in batch:
                number = resident.voucher_number
                if resident.voucher_id is not None:
                    number = numbers.get(resident.voucher_id, number)
                if event is not shown_event:  # once per event, however many residents
                    shown_event, (when, reason) = event, _event_columns(event)
                    details = event.details if isinstance(event.details, dict) else {}
                    memo = note(details) if "note_sealed" in details else ""
                yield [
                    when,
                    event.action,
                    event.actor_kind,
                    event.actor_id,
                    "" if resident.voucher_id is None else resident.voucher_id,
                    number,
                    reason,
                    event.ip or "",
                    event.seq,
                    resident.note,
                    describe(event.action),
                    emails.get(event.actor_id, "") if event.actor_kind == Actor.STAFF else "",
                    describe_reason(event.action, reason) if reason else "",
                    memo,
                    f"{event.target_type}:{event.target_id}" if event.target_type else "",
                ]


def _voucher_numbers(voucher_ids: set[int]) -> dict[int, str]:
    # One array parameter, not one placeholder per id: the client would parse thousands.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, voucher_number FROM booking_voucher WHERE id = ANY(%s)",
            [list(voucher_ids)],
        )
        return dict(cursor.fetchall())


def _event_columns(event: Event) -> tuple[str, str]:
    """An event's time (in Japan, as Excel reads a date and time) and its reason."""
    return (
        event.occurred_at.astimezone(JAPAN).strftime("%Y/%m/%d %H:%M:%S"),
        str(event.details.get("reason", "")),
    )


_RESIDENTS_PER_QUERY = 5000
# Held in memory up to this size, then in the scratch space (/tmp).
_REPORT_IN_MEMORY_BYTES = 8 * 1024 * 1024


@dataclass
class TrailReport:
    start: datetime
    end: datetime
    rows: int
    # The report as CSV (UTF-8 with a BOM: Excel, which most municipal offices open CSV
    # files with, then reads it as UTF-8 rather than Shift_JIS), at its start; the caller
    # closes it.
    csv: IO[bytes]


def trail_report_build(
    *,
    staff: StaffMember,
    start: datetime,
    end: datetime,
    ip: str | None,
    describe: Callable[[str], str] = str,
    describe_reason: Callable[[str, str], str] = lambda _action, reason: reason,
    note: Callable[[dict[str, Any]], str] = lambda _details: "",
) -> TrailReport:
    """Every read of a resident's data between ``start`` (inclusive) and ``end``: one row
    per event and resident, with the voucher's id and number, and a reveal's note opened by
    ``note``. Audited as ``trail.report_downloaded`` (the range, the row count and how many
    notes were opened). Written as CSV into a file
    that stays in memory while small (a report naming a codes file's million vouchers is
    about 100 MB): no list of its rows is ever held."""
    if staff.role not in (StaffMember.Role.ADMIN, StaffMember.Role.AUDITOR):
        raise PermissionDenied("the trail is for auditors and admins")
    if end <= start:
        raise ValidationError(_("終了日時は開始日時より後にしてください。"))
    spooled = tempfile.SpooledTemporaryFile(max_size=_REPORT_IN_MEMORY_BYTES)
    try:
        opened = 0

        def counted_note(details: dict[str, Any]) -> str:
            nonlocal opened
            text = note(details)
            opened += bool(text)
            return text

        rows, residents = _write_report(
            spooled, _report_rows(start, end, describe, describe_reason, counted_note)
        )
        record(
            action="trail.report_downloaded",
            actor=Actor(Actor.STAFF, str(staff.user_id)),
            ip=ip,
            details={
                "from": start.isoformat(),
                "to": end.isoformat(),
                "rows": rows,
                "residents": residents,
                "notes_opened": opened,
            },
        )
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return TrailReport(start=start, end=end, rows=rows, csv=spooled)


def _write_report(out: IO[bytes], rows: Iterable[list[Any]]) -> tuple[int, int]:
    """The rows as CSV into ``out``; how many rows, and how many residents they name (a
    voucher, or a voucher number that is not one): vouchers kept as id ranges, so a codes
    file's million vouchers take a few numbers of memory."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    text.write("\ufeff")
    writer.writerow(REPORT_HEADER)
    count = 0
    vouchers = VoucherRanges()
    unregistered: set[str] = set()
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        count += 1
        if row[4] != "":
            vouchers.add(row[4], row[4])
        elif row[5]:
            unregistered.add(row[5])
    text.flush()
    text.detach()  # ``out`` stays open for the caller
    return count, vouchers.count + len(unregistered)
