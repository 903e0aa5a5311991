"""The municipality's booking rules, set by its admin: the booking window and options (the
policy), who may book from when (age phases) and the vaccines offered with their dose rules.
Every change is audited with what it changed, and drops the residents' cached availability
where the change moves what they are offered."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import AgePhase, BookingPolicy, VaccineProduct
from booking.services.planning.base import JAPAN, PlanningRefused, invalidate_on_commit


@dataclass(frozen=True)
class PolicyDetails:
    opens_days_ahead: int
    opens_at_time: time | None
    closes_hours_before: int
    book_series_together: bool
    cancel_cascades: bool
    call_centre_phone: str
    call_centre_hours: str


@dataclass(frozen=True)
class PhaseDetails:
    name: str
    minimum_age: int
    opens_at: datetime


@dataclass(frozen=True)
class VaccineDetails:
    code: str
    name: str
    maker: str
    doses_in_series: int
    interval_days: int
    minimum_age: int
    active: bool


def _as_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(JAPAN).isoformat(timespec="minutes")
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if value is None:
        return ""
    return str(value)


def rules_version(row: Model, details: type) -> str:
    """A short fingerprint of what an edit form shows of ``row``: the fields of ``details``
    (a details class). The form carries it; a save from a form opened before another admin's
    change is refused (``seen_version``), never written back over that change."""
    digest = hashlib.sha256()
    for field in fields(details):
        digest.update(f"{field.name}={_as_text(getattr(row, field.name))}\n".encode())
    return digest.hexdigest()[:16]


def _save_changes(
    current: Model,
    details: object,
    *,
    action: str,
    actor: Actor,
    ip: str | None,
    also_save: tuple[str, ...] = (),
    seen_version: str = "",
) -> list[str]:
    """Set on ``current`` (a row locked by the caller) the fields of ``details`` whose values
    differ, save just those, and audit ``action`` with each ``field: before → after`` (none of
    these values is personal). The names changed, in ``details``' order; none, nothing written.

    ``seen_version``: ``rules_version`` as the form showed the row; PlanningRefused
    (``changed_meanwhile``) when the row has changed since."""
    if seen_version and seen_version != rules_version(current, type(details)):
        raise PlanningRefused(
            "changed_meanwhile",
            _(
                "この画面を開いた後に、ほかの職員がこの内容を変更しました。保存していません。"
                "「予約の受付条件」の画面から開き直して、いまの内容を確かめてから変更してください。"
            ),
        )
    changed = [
        field.name
        for field in fields(details)  # type: ignore[arg-type]
        if getattr(current, field.name) != getattr(details, field.name)
    ]
    if not changed:
        return changed
    audit_changes = [
        f"{name}: {_as_text(getattr(current, name))} → {_as_text(getattr(details, name))}"
        for name in changed
    ]
    for name in changed:
        setattr(current, name, getattr(details, name))
    current.save(update_fields=[*changed, *also_save])
    record(action=action, actor=actor, target=current, ip=ip, details={"changed": audit_changes})
    return changed


def _every_bookable_day(days_ahead: int) -> list[date]:
    today = timezone.localdate(timezone=JAPAN)
    return [today + timedelta(days=offset) for offset in range(days_ahead + 1)]


def booking_policy_update(
    *, details: PolicyDetails, actor: Actor, ip: str | None = None, seen_version: str = ""
) -> BookingPolicy:
    """Change the booking window and options. A longer or shorter window changes which days
    residents are offered, so every day of the old and new windows is dropped from their
    cached availability."""
    with transaction.atomic():
        BookingPolicy.current()  # the row exists
        current = BookingPolicy.objects.select_for_update().get(pk=1)
        days = max(current.opens_days_ahead, details.opens_days_ahead)
        changed = _save_changes(
            current,
            details,
            action="booking_policy.updated",
            actor=actor,
            ip=ip,
            also_save=("updated_at",),
            seen_version=seen_version,
        )
        if {"opens_days_ahead", "opens_at_time", "closes_hours_before"} & set(changed):
            invalidate_on_commit(_every_bookable_day(days))
    return current


def _phase_facts(phase: AgePhase) -> dict[str, object]:
    return {
        "phase": phase.name,
        "minimum_age": phase.minimum_age,
        "opens_at": _as_text(phase.opens_at),
    }


def age_phase_create(*, details: PhaseDetails, actor: Actor, ip: str | None = None) -> AgePhase:
    with transaction.atomic():
        phase = AgePhase.objects.create(
            name=details.name, minimum_age=details.minimum_age, opens_at=details.opens_at
        )
        record(
            action="age_phase.created",
            actor=actor,
            target=phase,
            ip=ip,
            details=_phase_facts(phase),
        )
    return phase


def age_phase_update(
    *,
    phase: AgePhase,
    details: PhaseDetails,
    actor: Actor,
    ip: str | None = None,
    seen_version: str = "",
) -> AgePhase:
    with transaction.atomic():
        current = AgePhase.objects.select_for_update().filter(pk=phase.pk).first()
        if current is None:
            raise PlanningRefused(
                "phase_gone",
                _("この区分は、ほかの職員が削除しました。保存していません。"),
            )
        _save_changes(
            current,
            details,
            action="age_phase.updated",
            actor=actor,
            ip=ip,
            seen_version=seen_version,
        )
    return current


def age_phase_delete(
    *, phase: AgePhase, actor: Actor, ip: str | None = None, seen_version: str = ""
) -> None:
    """Remove a phase. Bookings already made stay; residents it alone covered can no longer
    book (the page that asks for the confirmation says so). ``seen_version``: the phase as
    that page showed it; one changed since is not deleted (PlanningRefused)."""
    with transaction.atomic():
        current = AgePhase.objects.select_for_update().filter(pk=phase.pk).first()
        if current is None:
            return
        if seen_version and seen_version != rules_version(current, PhaseDetails):
            raise PlanningRefused(
                "changed_meanwhile",
                _(
                    "この画面を開いた後に、ほかの職員がこの区分を変更しました。削除していません。"
                    "いまの内容を確かめてから、削除するかどうか決めてください。"
                ),
            )
        record(
            action="age_phase.deleted",
            actor=actor,
            target=current,
            ip=ip,
            details=_phase_facts(current),
        )
        current.delete()


def vaccine_create(
    *, details: VaccineDetails, actor: Actor, ip: str | None = None
) -> VaccineProduct:
    with transaction.atomic():
        if VaccineProduct.objects.filter(code=details.code).exists():
            raise PlanningRefused(
                "vaccine_code_taken",
                _("コード「%(code)s」のワクチンはすでに登録されています。")
                % {"code": details.code},
            )
        product = VaccineProduct.objects.create(
            **{field.name: getattr(details, field.name) for field in fields(details)}
        )
        record(
            action="vaccine.created",
            actor=actor,
            target=product,
            ip=ip,
            details={
                "code": product.code,
                "doses_in_series": product.doses_in_series,
                "interval_days": product.interval_days,
                "minimum_age": product.minimum_age,
            },
        )
    return product


def vaccine_update(
    *,
    product: VaccineProduct,
    details: VaccineDetails,
    actor: Actor,
    ip: str | None = None,
    seen_version: str = "",
) -> VaccineProduct:
    """Change a vaccine's name or rules, or stop offering it (``active``). Its code is how
    slots and records name it: it does not change. A name or offer change is seen by
    residents at once (their cached day lists name the vaccine)."""
    if details.code != product.code:
        raise PlanningRefused("vaccine_code_fixed", _("ワクチンのコードは変更できません。"))
    with transaction.atomic():
        current = VaccineProduct.objects.select_for_update().get(pk=product.pk)
        changed = _save_changes(
            current,
            details,
            action="vaccine.updated",
            actor=actor,
            ip=ip,
            seen_version=seen_version,
        )
        if {"name", "active"} & set(changed):
            invalidate_on_commit(_every_bookable_day(BookingPolicy.current().opens_days_ahead))
    return current
