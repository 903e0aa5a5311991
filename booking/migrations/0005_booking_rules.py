# Written for the booking service: a change keeps the booking row (changed_at), one policy
# row per municipality, one slot per venue, vaccine and time.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0004_notifications"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="bookingpolicy",
            constraint=models.CheckConstraint(
                condition=models.Q(("id", 1)), name="booking_policy_single_row"
            ),
        ),
        migrations.AddConstraint(
            model_name="slot",
            constraint=models.UniqueConstraint(
                fields=("venue", "product", "starts_at"), name="one_slot_per_venue_product_time"
            ),
        ),
    ]
