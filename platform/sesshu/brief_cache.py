"""Rows that hardly ever change, kept by each process for a few seconds.

Which municipality a host names, a municipality's booking policy and its age phases are read
by almost every request and change a few times a year. Each process keeps them for
``SESSHU_TENANT_CACHE_SECONDS`` (5 by default; 0 turns this off, as in the tests but for those
of the caches themselves). A change reaches other processes within that time; the process
that saves or deletes a row of a model named by ``forget_on_changes_to`` forgets at once, and
again when that transaction commits (a request in between may have kept the row as it was).
Callers get a (shallow) copy of their own: a request may set attributes on what it was given.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")


class BriefCache(Generic[T]):
    def __init__(self, *, limit: int = 4096) -> None:
        self._limit = limit
        self._entries: dict[str, tuple[float, T]] = {}

    def get(self, key: str, load: Callable[[], T | None]) -> T | None:
        """The value kept for ``key``, or what ``load`` returns (kept unless None)."""
        seconds = settings.SESSHU_TENANT_CACHE_SECONDS
        if seconds > 0:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > time.monotonic():
                return copy.copy(entry[1])
        value = load()
        if value is not None and seconds > 0:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + seconds, copy.copy(value))
        return value

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def forget(self) -> None:
        """Forget everything kept (in this process)."""
        self._entries.clear()

    def forget_on_changes_to(self, *watched: type[models.Model]) -> None:
        for model in watched:
            post_save.connect(self._changed, sender=model, weak=False)
            post_delete.connect(self._changed, sender=model, weak=False)

    def _changed(self, sender: object, **kwargs: object) -> None:
        self.forget()
        transaction.on_commit(self.forget)
