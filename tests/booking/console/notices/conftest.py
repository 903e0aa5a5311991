from __future__ import annotations

from tests.booking.console.callcentre.cast import (  # noqa: F401  (fixtures)
    as_admin,
    auditor_a,
    venue_a,
)
