from django.db import migrations, models

# The channel each booking was made through: its channel, unless it was changed since (a
# change moves it to the channel it was changed through); then the channel the trail
# recorded when it was made, or, without that, its channel as before.
BACKFILL = """
UPDATE booking_booking b SET booked_through = CASE
    WHEN b.changed_at IS NULL THEN b.channel
    ELSE coalesce((
        SELECT e.details ->> 'channel' FROM audit_event e
        WHERE e.action = 'booking.created' AND e.target_type = 'booking.booking'
          AND e.target_id = b.id::text
          AND e.details ->> 'channel' IN ('web', 'line', 'call_centre')
        ORDER BY e.seq LIMIT 1), b.channel)
END
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
        ("booking", "0023_booking_cancel_reason"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="booked_through",
            field=models.CharField(
                choices=[("web", "ウェブ"), ("line", "LINE"), ("call_centre", "コールセンター")],
                default="",
                max_length=12,
                verbose_name="予約したときの受付方法",
            ),
            preserve_default=False,
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.CheckConstraint(
                condition=models.Q(("booked_through__in", ["web", "line", "call_centre"])),
                name="booking_booked_through_known",
            ),
        ),
    ]
