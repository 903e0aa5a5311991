"""Incident response inside one municipality: the resident-site notice and where the console
may be used from (SECURITY.md "Incident response", Kodaira 2018).

Both live in the municipality's schema: the municipality's own admin manages them from the
console, and the tenant role can write them (it cannot write the public ``Municipality`` row,
whose ``status`` the incident service switches from the public context).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Incident(models.Model):
    """One period of incident mode, with the notice the resident site shows meanwhile.

    At most one is open (``ended_at`` empty). The resident pages read the notice with
    :meth:`current_notice`; the counts say what starting it did, for the report afterwards.
    """

    NOTICE_MAX_LENGTH = 400

    notice = models.TextField(_("住民向けのお知らせ"), max_length=NOTICE_MAX_LENGTH)
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    passwords_reset = models.PositiveIntegerField(default=0)
    sessions_ended = models.PositiveIntegerField(default=0)
    notices_queued = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ended_at"],
                condition=Q(ended_at__isnull=True),
                name="one_open_incident",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} from {self.started_at:%Y-%m-%d %H:%M}"

    @classmethod
    def open(cls) -> Incident | None:
        return cls.objects.filter(ended_at__isnull=True).first()

    @classmethod
    def current_notice(cls) -> str:
        """The notice the resident site shows now, or "" outside incident mode.

        Read it together with ``Municipality.status == "incident"``: the status is what
        closes logins and registrations; this is only the text to show.
        """
        incident = cls.open()
        return incident.notice if incident is not None else ""


class ConsoleNetwork(models.Model):
    """One network (CIDR) the municipality's console may be used from.

    No rows: the console is reachable from anywhere (the page says so). Rows are replaced as a
    whole list by ``console_networks_replace``, which refuses a list that would shut out the
    admin saving it.
    """

    network = models.CharField(_("ネットワーク（CIDR）"), max_length=43, unique=True)
    label = models.CharField(_("名称"), max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network"]

    def __str__(self) -> str:
        return self.network
