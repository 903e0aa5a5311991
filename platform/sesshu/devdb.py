"""The embedded PostgreSQL used when no DATABASE_URL is given (``make run`` on a laptop)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

EMBEDDED_APP_ROLE = "sesshu"
EMBEDDED_DATABASE = "sesshu"


def embedded_admin_url(data_dir: Path) -> str:
    """Start (or find running) the pgserver cluster under ``data_dir``; return its admin URL."""
    import logging

    import pgserver

    # pgserver logs from an atexit hook, after pytest has closed the streams it wrote to.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def app_url_from_admin(admin_url: str, *, role: str, database: str) -> str:
    # pgserver listens on a Unix socket inside the data folder: keep the ?host= part.
    query = admin_url.split("?", 1)[1] if "?" in admin_url else ""
    host = query.split("host=", 1)[1].split("&", 1)[0] if "host=" in query else ""
    return f"postgresql://{quote(role)}@/{quote(database)}?host={host}"
