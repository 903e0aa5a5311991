from django.db import migrations, models

# The bookings made at the venue's desk before they were told apart: the trail recorded each
# one's creation with ``at_the_venue``. Back to the call centre's, undone.
BACKFILL = """
UPDATE booking_booking b SET booked_through = 'venue'
FROM audit_event e
WHERE e.action = 'booking.created' AND e.target_type = 'booking.booking'
  AND e.target_id = b.id::text AND (e.details ->> 'at_the_venue') = 'true'
"""
UNDO = "UPDATE booking_booking SET booked_through = 'call_centre' WHERE booked_through = 'venue'"


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
        ("booking", "0028_booking_policy_opens_at_time"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="booking",
            name="booking_booked_through_known",
        ),
        migrations.AlterField(
            model_name="booking",
            name="booked_through",
            field=models.CharField(
                choices=[
                    ("web", "ウェブ"),
                    ("line", "LINE"),
                    ("call_centre", "コールセンター"),
                    ("venue", "会場の受付（予約なしで来場）"),
                ],
                max_length=12,
                verbose_name="予約したときの受付方法",
            ),
        ),
        migrations.RunSQL(BACKFILL, UNDO),
        migrations.AddConstraint(
            model_name="booking",
            constraint=models.CheckConstraint(
                condition=models.Q(("booked_through__in", ["web", "line", "call_centre", "venue"])),
                name="booking_booked_through_known",
            ),
        ),
    ]
