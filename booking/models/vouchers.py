from __future__ import annotations

from django.contrib.postgres.indexes import HashIndex
from django.db import models
from django.utils.translation import gettext_lazy as _


class Voucher(models.Model):
    """One 接種券 from the municipality's registry: who may log in and book.

    The voucher number is the lookup key and the only value ever shown back to a resident.
    Every other personal field is sealed together under the municipality's key, bound to this
    table and this voucher number; the kana name and the phone number also get blind indexes
    so staff can find a resident by exact match without decrypting anyone else.
    """

    holds_personal_data = True

    class Status(models.TextChoices):
        ACTIVE = "active", _("有効")
        WITHDRAWN = "withdrawn", _("対象外（転出・死亡等）")

    # Unique through Meta.constraints rather than unique=True, which on PostgreSQL adds a
    # second (varchar_pattern_ops) index that no query uses and every import row pays for.
    voucher_number = models.CharField(_("接種券番号"), max_length=10)
    personal = models.BinaryField()
    kana_index = models.BinaryField(null=True)
    phone_index = models.BinaryField(null=True)
    # A keyed hash of the normalised row: tells an unchanged row from a changed one on
    # re-import without decrypting anything.
    content_hash = models.BinaryField()
    dose = models.PositiveSmallIntegerField(_("接種回数"), null=True, blank=True)
    status = models.CharField(
        _("状態"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # The full-list import that withdrew it. Like last_import, no database constraint: it
    # would queue a check for every row an import inserts (a million per import), each
    # finding NULL. Indexed only where set (Meta.indexes): an index of every row would take
    # a NULL entry for each voucher an import inserts, and only withdrawn ones are looked up.
    withdrawn_by = models.ForeignKey(
        "booking.RegistryImport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # Staff can stop a resident's web login (it also ends their sessions).
    web_login_disabled = models.BooleanField(default=False)

    class WebLoginStop(models.TextChoices):
        STAFF = "staff", _("職員が停止（住民ごと）")
        LETTERS = "letters", _("郵送物の紛失・盗難のおそれ")

    # Why it is stopped ("" while it is not): the call centre checks a caller of a voucher
    # whose letter may be in someone else's hands by more than what the letter says.
    # A default in the database too: the registry import inserts vouchers in SQL.
    web_login_stop = models.CharField(
        max_length=10, choices=WebLoginStop.choices, blank=True, default="", db_default=""
    )
    # voucher_code login mode: a keyed hash of the one-time code printed on the letter.
    activation_code_hash = models.BinaryField(null=True)
    activation_code_used_at = models.DateTimeField(null=True, blank=True)
    # Which import last wrote the row. Set on every row an import writes, so no database
    # constraint or index: PostgreSQL would check the constraint once per row (a million
    # lookups per import) and nothing searches by it. Django's SET_NULL still applies.
    last_import = models.ForeignKey(
        "booking.RegistryImport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["voucher_number"], name="voucher_number_unique")
        ]
        # Blind indexes are only ever compared for equality, and their values are random:
        # hash indexes answer the same lookups, and a million-row import inserts into them in
        # about 60 % of the time B-trees take (5.9 s against 9.7 s for two such indexes here).
        indexes = [
            HashIndex(fields=["kana_index"], name="voucher_kana_index"),
            HashIndex(fields=["phone_index"], name="voucher_phone_index"),
            models.Index(
                fields=["withdrawn_by"],
                name="voucher_withdrawn_by",
                condition=models.Q(withdrawn_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"voucher {self.voucher_number}"
