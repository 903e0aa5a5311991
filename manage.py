#!/usr/bin/env python
"""Django's command-line utility, with ``platform/`` on the import path.

Commands that create or alter database objects run in *owner mode*: the connection keeps the
owning login role instead of switching to a tenant's role (see tenants.db.roles).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OWNER_COMMANDS = {
    "migrate",
    "migrate_schemas",
    "db_bootstrap",
    "tenant_provision",
    "tenant_decommission",
    "demo_setup",
    "flush",
}


def main() -> None:
    root = Path(__file__).resolve().parent
    sys.path[:0] = [str(root / "platform"), str(root)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sesshu.settings")
    if len(sys.argv) > 1 and sys.argv[1] in OWNER_COMMANDS:
        os.environ["SESSHU_DB_OWNER_MODE"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
