from __future__ import annotations

from django.db import models
from django.db.models import Q

from booking.models.vouchers import Voucher


class ResidentCredential(models.Model):
    """What a resident logs in with besides the voucher, in the modes that have it.

    - ``account``: an e-mail address (sealed under the municipality's key, found through a
      blind index) and a password, created at registration for one voucher;
    - ``voucher_dob_then_password`` and ``voucher_code``: the password set at first login.

    The password is a Django hash with the configured argon2id hasher; empty until one is
    set. One row per voucher at most.
    """

    holds_personal_data = True

    voucher = models.OneToOneField(
        Voucher, on_delete=models.CASCADE, related_name="resident_credential"
    )
    password = models.CharField(max_length=256, blank=True)
    password_set_at = models.DateTimeField(null=True, blank=True)
    # account mode only: the address sealed (bound to this table and the voucher number) and
    # its blind index, which is what a login looks up.
    email = models.BinaryField(null=True)
    email_index = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["email_index"],
                condition=Q(email_index__isnull=False),
                name="one_resident_account_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"credential of voucher {self.voucher_id}"

    @property
    def has_password(self) -> bool:
        return bool(self.password)


class ResidentSession(models.Model):
    """A resident's web session and the voucher it belongs to.

    Lets staff end one resident's sessions (disabling web login, ASVS 7.4.2) with one indexed
    query, and lets the resident pages accept only sessions that the resident login created.
    A session key, not a foreign key to the session table, as for StaffSession.
    """

    session_key = models.CharField(max_length=40, primary_key=True)
    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"resident session of voucher {self.voucher_id}"
