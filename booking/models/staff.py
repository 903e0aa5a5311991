from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffMember(models.Model):
    """A municipal staff account's role, inside the municipality's schema."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("管理者")
        CALL_CENTRE = "call_centre", _("コールセンター")
        VENUE = "venue", _("会場スタッフ")
        AUDITOR = "auditor", _("監査担当")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    role = models.CharField(_("役割"), max_length=20, choices=Role.choices)
    # Where a venue staff member works: reception at any other venue is refused. Empty means
    # nowhere yet (an admin assigns venues); the other roles do not use it.
    venues = models.ManyToManyField(
        "booking.Venue", blank=True, related_name="staff_members", verbose_name=_("担当会場")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"staff {self.user_id} ({self.role})"


class StaffInvitation(models.Model):
    """A single-use, expiring invitation; only the token's hash is stored."""

    email = models.EmailField(_("メールアドレス"))
    role = models.CharField(_("役割"), max_length=20, choices=StaffMember.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # A link to set up an existing account again (a forgotten password, a lost authenticator,
    # an account to enable again) rather than to create one.
    resets = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.role})"


class StaffSession(models.Model):
    """A console session and the staff account it belongs to.

    Django's session rows hold the user id only inside their encoded data; this row lets an
    admin end one staff member's sessions (ASVS 7.4.5) with one indexed query, and lets the
    console accept only sessions that its own login created. It holds the session key, not
    a foreign key: sessions are also a shared app, and a foreign key would make every
    session deletion in the public schema look for this tenant-only table.
    """

    session_key = models.CharField(max_length=40, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"staff session of {self.user_id}"
