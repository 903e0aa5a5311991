"""Model rows read and inserted on the hottest path without the ORM's query compiler.

The ORM compiles every query again each time it runs: for a slot with its venue and vaccine
that is about 0.7 ms of CPU against 0.2 ms for the same statement through a cursor, and a
booking POST ran a dozen such queries (scripts/bench/README.md, "Stop 13"). Here the SQL of
a fixed query is written once, its column lists made from the models' own metadata (so a
renamed column is followed), and rows come back as the ORM would make them: the same
converters (``from_db_value``) applied, the same ``Model.from_db``, related rows in the
instance's cache as ``select_related`` leaves them.

For the few queries a profile of the booking rush names; everywhere else, the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)

_Converter = Callable[[Any, Any, Any], Any]


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    """The model's table name, quoted for SQL."""
    return _quoted(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """The column of the model's field ``name``, quoted for SQL."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return _quoted(field.column)


class Columns(Generic[M]):
    """A model's concrete columns in a SELECT, under a table alias.

    ``Columns(Slot, "s").sql`` is ``s."id", s."venue_id", …`` in the model's field order;
    ``load(row, start)`` makes the instance from ``row[start:start + width]``. ``only`` reads
    some fields (the primary key is always among them), like ``QuerySet.only``.
    """

    def __init__(self, model: type[M], alias: str, *, only: Sequence[str] | None = None) -> None:
        fields: list[Field[Any, Any]] = list(model._meta.concrete_fields)
        if only is not None:
            wanted = set(only) | {model._meta.pk.name}  # type: ignore[union-attr]
            unknown = wanted - {field.name for field in fields}
            if unknown:
                raise ValueError(f"{model.__name__} has no concrete fields {sorted(unknown)}")
            fields = [field for field in fields if field.name in wanted]
        self.model = model
        self.alias = alias
        self.table = table(model)
        self.width = len(fields)
        self.sql = ", ".join(f"{alias}.{_quoted(field.column)}" for field in fields)
        # The query's beginning when nothing else is joined: add WHERE and the rest.
        self.select = f"SELECT {self.sql} FROM {self.table} {alias}"  # noqa: S608
        self._attnames = [field.attname for field in fields]
        self._converters: list[tuple[int, list[_Converter], Any]] = []
        for index, field in enumerate(fields):
            col = field.get_col(alias)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if found:
                self._converters.append((index, found, col))

    def load(self, row: Sequence[Any], start: int = 0) -> M:
        values = list(row[start : start + self.width])
        for index, converters, col in self._converters:
            value = values[index]
            for converter in converters:
                value = converter(value, col, connection)
            values[index] = value
        return self.model.from_db(DEFAULT_DB_ALIAS, self._attnames, values)  # type: ignore[return-value]


@cache
def columns_of(model: type[M], alias: str, only: tuple[str, ...] | None = None) -> Columns[M]:
    """``Columns(model, alias, only=only)``, made once per process."""
    return Columns(model, alias, only=only)


def keep_related(instance: Model, name: str, related: Model | None) -> None:
    """Put ``related`` in ``instance``'s cache of the relation ``name``, as ``select_related``
    does: ``instance.<name>`` then runs no query (a reverse one-to-one cached as None raises
    its ``DoesNotExist``, as after ``select_related``)."""
    field = instance._meta.get_field(name)
    field.set_cached_value(instance, related)  # type: ignore[union-attr]


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (values in ``params``), through Django's cursor: the tenant's
    search path and role are set as for any query, and tests capture it."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]


class Insert(Generic[M]):
    """``INSERT`` of a new row as ``instance.save(force_insert=True)`` writes it: every local
    concrete field, with ``pre_save`` (``auto_now_add``) and ``get_db_prep_save`` (JSON, IP
    addresses) applied; a primary key the database sets (an automatic one) is left out and
    read back with ``RETURNING``. No signals are sent: use it for models nobody listens to."""

    def __init__(self, model: type[M]) -> None:
        meta = model._meta
        pk = meta.pk
        assert pk is not None
        self.model = model
        self._returning = bool(getattr(pk, "db_returning", False))
        self._fields = [
            field
            for field in meta.local_concrete_fields
            if not (field is pk and self._returning) and not getattr(field, "generated", False)
        ]
        columns = ", ".join(_quoted(field.column) for field in self._fields)
        marks = ", ".join(["%s"] * len(self._fields))
        self.sql = f"INSERT INTO {table(model)} ({columns}) VALUES ({marks})"  # noqa: S608
        if self._returning:
            self.sql += f" RETURNING {_quoted(pk.column)}"

    def __call__(self, instance: M) -> M:
        if not isinstance(instance, self.model) or not instance._state.adding:
            raise ValueError(f"a new {self.model.__name__} is inserted, once")
        if self._returning and instance.pk is not None:
            raise ValueError(f"a new {self.model.__name__} gets its primary key from the database")
        if not self._returning and instance.pk in (None, ""):
            raise ValueError(f"a new {self.model.__name__} needs its primary key")
        values = [
            field.get_db_prep_save(field.pre_save(instance, True), connection)
            for field in self._fields
        ]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, values)
            if self._returning:
                instance.pk = cursor.fetchone()[0]
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS
        return instance


@cache
def insert_of(model: type[M]) -> Insert[M]:
    """``Insert(model)``, made once per process."""
    return Insert(model)
