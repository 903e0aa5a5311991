from __future__ import annotations

from django.db import migrations

from audit.chain import APPEND_ONLY_SQL

TABLES = ("audit_platform_event", "audit_platform_event_seal")


class Migration(migrations.Migration):
    """PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE on the trail and its seals, for
    every role."""

    dependencies = [("audit_platform", "0001_initial")]

    operations = [
        migrations.RunSQL(
            APPEND_ONLY_SQL.format(table=table),
            reverse_sql=f"DROP TRIGGER {table}_no_update_delete ON {table}; "
            f"DROP TRIGGER {table}_no_truncate ON {table};",
        )
        for table in TABLES
    ]
