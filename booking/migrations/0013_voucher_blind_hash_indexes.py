"""The vouchers' blind indexes (kana name, phone) become hash indexes: they are only ever
compared for equality, and a registry import inserts into hash indexes faster than into
B-trees of random keys."""

import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0012_registry_import_auto_resumes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="voucher",
            name="voucher_kana_index",
        ),
        migrations.RemoveIndex(
            model_name="voucher",
            name="voucher_phone_index",
        ),
        migrations.AddIndex(
            model_name="voucher",
            index=django.contrib.postgres.indexes.HashIndex(
                fields=["kana_index"], name="voucher_kana_index"
            ),
        ),
        migrations.AddIndex(
            model_name="voucher",
            index=django.contrib.postgres.indexes.HashIndex(
                fields=["phone_index"], name="voucher_phone_index"
            ),
        ),
    ]
