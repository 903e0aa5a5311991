from django.db import migrations, models

# Bookings cancelled with their slot before the reason was kept: each slot.cancelled event
# of the trail lists them.
FROM_TRAIL = """
UPDATE booking_booking b SET cancel_reason = 'slot_cancelled'
WHERE b.status = 'cancelled' AND b.cancel_reason = '' AND b.id IN (
    SELECT listed::bigint
    FROM audit_event e, jsonb_array_elements_text(e.details -> 'bookings') AS listed
    WHERE e.action = 'slot.cancelled' AND jsonb_typeof(e.details -> 'bookings') = 'array')
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
        ("booking", "0024_booking_booked_through"),
    ]

    operations = [
        migrations.AlterField(
            model_name="booking",
            name="cancel_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("deferred", "接種の見合わせ（会場での予診の結果など）"),
                    ("slot_cancelled", "予約枠の中止（市区町村の都合）"),
                ],
                db_default="",
                default="",
                max_length=20,
                verbose_name="取消の理由",
            ),
        ),
        migrations.RunSQL(FROM_TRAIL, migrations.RunSQL.noop),
    ]
