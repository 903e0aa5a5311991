"""A municipality's saved column mapping for its registry files: which header text each
field has in its files, when they are not the usual names. Saved once by an admin, used by
every import after (the console, the vendor's control plane and the command)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import RegistryColumnMapping
from booking.registry.fields import FIELD_LABELS, normalize_header

HEADER_MAX_CHARS = 40


class RegistryColumnMappingInvalid(Exception):
    """The mapping cannot be saved; ``errors`` says why, per field ("" for the whole)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def registry_column_mapping_get() -> dict[str, str]:
    """The saved header text per field (only fields the municipality named)."""
    saved = RegistryColumnMapping.objects.filter(pk=RegistryColumnMapping.SINGLETON_ID).first()
    return dict(saved.headers) if saved else {}


def saved_column_mapping() -> dict[str, str | None]:
    """The saved mapping as the parser takes it: header text -> field."""
    saved = RegistryColumnMapping.objects.filter(pk=RegistryColumnMapping.SINGLETON_ID).first()
    return saved.column_mapping() if saved else {}


def _validated(headers: dict[str, str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    unknown = sorted(field for field in headers if field not in FIELD_LABELS)
    if unknown:
        errors[""] = [_("不明な項目があります（%(fields)s）。") % {"fields": "、".join(unknown)}]
    fields_by_header: dict[str, str] = {}
    for field in FIELD_LABELS:
        text = " ".join((headers.get(field) or "").split())
        if not text:
            continue
        if len(text) > HEADER_MAX_CHARS:
            errors.setdefault(field, []).append(
                _("見出しは%(n)s文字以内にしてください。") % {"n": HEADER_MAX_CHARS}
            )
            continue
        key = normalize_header(text)
        if not key:
            errors.setdefault(field, []).append(_("見出しとして読み取れる文字がありません。"))
            continue
        if key in fields_by_header:
            errors.setdefault(field, []).append(
                _("「%(other)s」と同じ見出しです。列ごとに違う見出しを指定してください。")
                % {"other": FIELD_LABELS[fields_by_header[key]]}
            )
            continue
        fields_by_header[key] = field
        cleaned[field] = text
    if errors:
        raise RegistryColumnMappingInvalid(errors)
    return cleaned


def registry_column_mapping_save(
    *, headers: dict[str, str], actor: Actor, ip: str | None = None
) -> dict[str, str]:
    """Validate and save the municipality's header texts (blank: the built-in names); audited
    with the fields it names. Returns what was saved."""
    cleaned = _validated(headers)
    with transaction.atomic():
        RegistryColumnMapping.objects.update_or_create(
            pk=RegistryColumnMapping.SINGLETON_ID,
            defaults={"headers": cleaned, "updated_by": f"{actor.kind}:{actor.id}"[:90]},
        )
        record(
            action="registry_import.mapping_saved",
            actor=actor,
            target=("booking.registrycolumnmapping", RegistryColumnMapping.SINGLETON_ID),
            ip=ip,
            details={"fields": sorted(cleaned)},
        )
    return cleaned
