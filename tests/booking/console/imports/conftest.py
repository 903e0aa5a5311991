from __future__ import annotations

from tests.booking.console.callcentre.cast import as_admin  # noqa: F401  (fixtures)
