"""Registry imports write a million rows: fewer per-row checks and indexes.

- The staging rows' and the vouchers' link to their import loses its database constraint
  (checked row by row) and its index (nothing searches by it).
- The voucher number stays unique through a named constraint, added before the field's own
  unique constraint goes, so it is never without one; this drops the varchar_pattern_ops
  index that ``unique=True`` brings on PostgreSQL.
- Import errors get an index by voucher number, which a full-list withdrawal asks per voucher.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0008_incident_console_networks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="registryimportrow",
            name="registry_import",
            field=models.ForeignKey(
                db_column="import_id",
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="booking.registryimport",
            ),
        ),
        migrations.AlterField(
            model_name="voucher",
            name="last_import",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="booking.registryimport",
            ),
        ),
        migrations.AddConstraint(
            model_name="voucher",
            constraint=models.UniqueConstraint(
                fields=("voucher_number",), name="voucher_number_unique"
            ),
        ),
        migrations.AlterField(
            model_name="voucher",
            name="voucher_number",
            field=models.CharField(max_length=10, verbose_name="接種券番号"),
        ),
        migrations.AddIndex(
            model_name="registryimporterror",
            index=models.Index(
                fields=["registry_import", "voucher_number"], name="registry_error_voucher"
            ),
        ),
    ]
