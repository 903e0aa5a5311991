from django.db import migrations, models

# Bookings deferred at the venue before the reason was a column: the trail recorded each
# (reception.deferred, then the cancellation in the same transaction).
FROM_TRAIL = """
UPDATE booking_booking b SET cancel_reason = 'deferred'
WHERE b.status = 'cancelled' AND EXISTS (
    SELECT 1 FROM audit_event e
    WHERE e.action = 'reception.deferred' AND e.target_type = 'booking.booking'
      AND e.target_id = b.id::text)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
        ("booking", "0022_registry_import_columns_missing"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="cancel_reason",
            field=models.CharField(
                blank=True,
                choices=[("deferred", "接種の見合わせ（会場での予診の結果など）")],
                db_default="",
                default="",
                max_length=12,
                verbose_name="取消の理由",
            ),
        ),
        migrations.RunSQL(FROM_TRAIL, migrations.RunSQL.noop),
    ]
