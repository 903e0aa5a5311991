"""An import's apply records the ranges of lines it has applied (``applied_lines``) instead of
one line it has applied through: batches run on several connections at once and commit out
of order. An apply under way keeps its progress: its lines through ``applied_through_line``
become its first range."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0013_voucher_blind_hash_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="registryimport",
            name="applied_lines",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunSQL(
            "UPDATE booking_registryimport"
            " SET applied_lines = jsonb_build_array(jsonb_build_array(0, applied_through_line))"
            " WHERE applied_through_line > 0",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RemoveField(
            model_name="registryimport",
            name="applied_through_line",
        ),
    ]
