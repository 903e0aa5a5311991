"""Tasks loaded only into the test worker (``--include``): they report what the worker's
database connection looks like while a task runs."""

from __future__ import annotations

from django.db import connection
from django.db.utils import DatabaseError

from sesshu.celery import app


@app.task(name="tests.probe_connection")
def probe_connection(other_schema: str | None = None) -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schemas(false), pg_backend_pid()")
        user, schemas, pid = cursor.fetchone()
    report: dict[str, object] = {
        "schema": connection.schema_name,
        "user": user,
        "search_path": list(schemas),
        "backend_pid": pid,
    }
    if other_schema:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT count(*) FROM "{other_schema}".auth_user')
            report["other"] = "read"
        except DatabaseError as exc:
            report["other"] = str(exc).splitlines()[0]
    return report
