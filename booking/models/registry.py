from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A run touches its import's heartbeat after every chunk or batch; one silent this long has
# died, and its work may be taken over (booking.services.registry_import.state._claim).
STALE_AFTER = timedelta(minutes=5)


# The message of an import cancelled at once after its preview, as asked (vouchers_import
# --dry-run): listed as a check, not as an import someone cancelled.
DRY_RUN = "dry_run"


class RegistryImport(models.Model):
    """One upload of the voucher registry, from preview to import.

    Parsing writes every valid row, sealed, into ``RegistryImportRow`` (the staging table)
    and every invalid one into ``RegistryImportError``; the preview's counts come from
    comparing the staging rows with the vouchers in SQL. Confirming applies the staging rows
    in batches (over several database connections), each committed with the range of lines
    it covered, so a worker killed half-way resumes with the ranges not yet covered and
    never applies a row twice or loses one.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("アップロード済み")
        PARSING = "parsing", _("確認中")
        PREVIEWED = "previewed", _("確認待ち（まだ取り込んでいません）")
        APPLYING = "applying", _("取込中")
        DONE = "done", _("取込完了")
        FAILED = "failed", _("失敗")
        CANCELLED = "cancelled", _("取消")

    class Source(models.TextChoices):
        CONTROL_PLANE = "controlplane", _("事業者管理画面")
        CONSOLE = "console", _("自治体管理画面")
        COMMAND = "command", _("コマンド")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    source = models.CharField(max_length=14, choices=Source.choices)
    file_name = models.CharField(_("ファイル名"), max_length=200)
    stored_file = models.CharField(max_length=300, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=20, blank=True)  # chosen, or empty: detect
    detected_encoding = models.CharField(max_length=20, blank=True)
    column_mapping = models.JSONField(default=dict, blank=True)
    full_list = models.BooleanField(_("全件リスト"), default=False)
    actor_kind = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=64, blank=True)
    # Progress: bytes of the file parsed, rows applied; timestamps for rates and time left.
    bytes_done = models.BigIntegerField(default=0)
    rows_total = models.IntegerField(default=0)
    rows_applied = models.IntegerField(default=0)
    # The ranges of lines already applied, as [after, upto] pairs (lines after ``after`` up
    # to ``upto``): each batch adds its own in the transaction that writes its rows, so a
    # rerun applies exactly the lines no range covers, whichever batches a run got through.
    applied_lines = models.JSONField(default=list, blank=True)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    # Touched after every chunk or batch; a run whose heartbeat stopped long ago is dead
    # and its work may be taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How many times the periodic sweep has resumed it: a run that dies every time (out of
    # memory on the file, say) is not started again for ever (registry_upkeep).
    auto_resumes = models.PositiveSmallIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    # Of the columns that tell who a caller is (address, phone, postal code), those the
    # file has none of (field names): the preview says so. Null for imports previewed
    # before it was recorded (and written so by the release before it).
    columns_missing = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    error_file = models.CharField(max_length=300, blank=True)
    error_file_expires_at = models.DateTimeField(null=True, blank=True)
    codes_file = models.CharField(max_length=300, blank=True)
    # The vouchers in the codes file, recorded as it is written ({"voucher_ranges": id
    # ranges, "residents": how many}): what its download names in the audit trail, without
    # reading a million lines back. Empty for files written before it was recorded.
    codes_scope = models.JSONField(default=dict, blank=True)
    codes_downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Who confirmed ("kind:id", as the audit trail names actors): the apply runs as the
    # system, and its event says on whose request.
    confirmed_by = models.CharField(max_length=90, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One import at work per municipality: two at once would race on the same rows.
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status__in=["parsing", "applying"]),
                name="one_registry_import_at_work",
            )
        ]

    def __str__(self) -> str:
        return f"registry import {self.pk} ({self.status})"

    @property
    def stalled(self) -> bool:
        """Nothing is working on this import though work is due: the run that had it stopped
        sending heartbeats (killed), or its queued task never came (lost message). It waits to
        be resumed — by the periodic sweep, a button, or ``vouchers_import --resume``."""
        stale_before = timezone.now() - STALE_AFTER
        if self.status in (self.Status.PARSING, self.Status.APPLYING):
            return self.heartbeat_at is None or self.heartbeat_at < stale_before
        if self.status == self.Status.UPLOADED:
            return self.created_at is not None and self.created_at < stale_before
        if self.status == self.Status.PREVIEWED and self.confirmed_at is not None:
            return self.confirmed_at < stale_before
        return False

    @property
    def requested_by(self) -> str:
        """Who uploaded it, as "kind:id" (the audit trail's actor)."""
        return f"{self.actor_kind}:{self.actor_id}"

    @property
    def encoding_label(self) -> str:
        """The encoding the file was read in, as staff know it (Shift_JIS, UTF-8)."""
        from booking.registry.csvfile import ENCODING_LABELS

        return ENCODING_LABELS.get(self.detected_encoding, self.detected_encoding)

    @property
    def status_label(self) -> str:
        if self.status == self.Status.CANCELLED and self.message == DRY_RUN:
            return str(_("確認のみ（取り込んでいません）"))
        return str(_("中断")) if self.stalled else self.get_status_display()


class RegistryImportRow(models.Model):
    """A valid row of an import, sealed and indexed, waiting to be applied.

    Unlogged (tenants.db.roles): a million staged rows write no WAL. A database crash empties
    the table; the apply step notices and asks for the preview to be run again.
    """

    holds_personal_data = True
    unlogged = True

    # Keyed by (import, line): a surrogate id would cost an identity value and a third
    # B-tree entry per staged row, a million times per import, and nothing looks a row up
    # by it. No foreign-key constraint either: a database constraint is checked row by row
    # for rows this module alone writes after taking the import. Django's CASCADE still
    # applies.
    pk = models.CompositePrimaryKey("registry_import", "line_number")
    registry_import = models.ForeignKey(
        RegistryImport,
        on_delete=models.CASCADE,
        db_column="import_id",
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    line_number = models.IntegerField()
    # Not indexed: duplicates, and the vouchers a full list leaves out, are found by hash
    # joins over the import's rows (one pass), not by a million index probes, and an index
    # on a random key would cost the COPY more than anything it answers.
    voucher_number = models.CharField(max_length=10)
    personal = models.BinaryField()
    kana_index = models.BinaryField(null=True)
    phone_index = models.BinaryField(null=True)
    content_hash = models.BinaryField()
    dose = models.PositiveSmallIntegerField(null=True)
    duplicate = models.BooleanField(db_default=False)

    def __str__(self) -> str:
        return f"line {self.line_number} of import {self.registry_import_id}"


class RegistryImportCodes(models.Model):
    """The activation codes one apply batch issued (the ``voucher_code`` login mode), sealed,
    until the end of the apply puts them all into the codes file. Committed with the batch's
    vouchers, which carry only the codes' hashes: a worker killed half-way loses no code,
    and the rerun issues none twice."""

    registry_import = models.ForeignKey(
        RegistryImport, on_delete=models.CASCADE, db_column="import_id", related_name="+"
    )
    # The batch's range of lines ends after this line (see apply._batches_left).
    after_line = models.IntegerField()
    codes = models.PositiveIntegerField()
    # The ids of the batch's new vouchers, as [first, last] ranges.
    voucher_ranges = models.JSONField(default=list)
    # The batch's rows of the codes file (voucher number, code), UTF-8 CSV, sealed as a field
    # bound to the import and the batch.
    sealed = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registry_import", "after_line"], name="registry_codes_batch"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.codes} codes after line {self.after_line} of import {self.registry_import_id}"
        )


class RegistryImportError(models.Model):
    """Why one row was not imported; the value is masked (never a full personal value)."""

    registry_import = models.ForeignKey(
        RegistryImport, on_delete=models.CASCADE, db_column="import_id", related_name="errors"
    )
    line_number = models.IntegerField()
    # Set when the row's voucher number itself is valid: a full-list import must not
    # withdraw a voucher whose row is in the file but has, say, a mistyped birth date.
    voucher_number = models.CharField(max_length=10, blank=True)
    column = models.CharField(max_length=40, blank=True)
    masked_value = models.CharField(max_length=60, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["line_number", "id"]
        indexes = [
            models.Index(fields=["registry_import", "line_number"], name="registry_error_line"),
            # A full-list import keeps vouchers whose rows are in the file but invalid: the
            # withdrawal asks this index, once per voucher.
            models.Index(
                fields=["registry_import", "voucher_number"], name="registry_error_voucher"
            ),
        ]

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.message}"


class RegistryColumnMapping(models.Model):
    """The municipality's own header texts for the registry's columns, kept for every later
    import (one row per schema, ``pk`` = 1). ``headers`` maps a field (booking.registry.fields
    FIELD_LABELS) to the header text its files use; a field not in it is found by its
    built-in names. Header texts are column names, not residents' data."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    headers = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=90, blank=True)  # "kind:id", as in the trail

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id=1), name="registry_column_mapping_singleton"
            )
        ]

    def __str__(self) -> str:
        return "registry column mapping"

    def column_mapping(self) -> dict[str, str | None]:
        """What the parser takes: header text -> field."""
        return {header: field for field, header in self.headers.items() if header}
