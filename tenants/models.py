from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from tenants.codes import validate_municipality_code


class Municipality(TenantMixin):
    """A municipality: one tenant, one schema, one database role, one data key.

    Holds no personal data: it lives in the public schema, which vendor operators manage.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("稼働中")
        SUSPENDED = "suspended", _("停止中")
        INCIDENT = "incident", _("インシデント対応中")
        DECOMMISSIONED = "decommissioned", _("廃止")

    class LoginMode(models.TextChoices):
        ACCOUNT = "account", _("アカウント")
        VOUCHER_DOB = "voucher_dob", _("接種券番号＋生年月日")
        VOUCHER_DOB_THEN_PASSWORD = (
            "voucher_dob_then_password",
            _("接種券番号＋生年月日（初回のみ）、以後パスワード"),
        )
        VOUCHER_CODE = "voucher_code", _("接種券番号＋認証コード、以後パスワード")

    code = models.CharField(
        _("市区町村コード"), max_length=6, unique=True, validators=[validate_municipality_code]
    )
    name = models.CharField(_("名称"), max_length=50)
    prefecture = models.CharField(_("都道府県"), max_length=10)
    status = models.CharField(
        _("状態"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    # While suspended: the status it had (resuming restores it: a municipality suspended in
    # incident mode stays in incident mode), the operator's reason, and since when.
    suspended_from = models.CharField(
        _("停止前の状態"), max_length=20, choices=Status.choices, blank=True, db_default=""
    )
    suspension_reason = models.CharField(_("停止の理由"), max_length=200, blank=True, db_default="")
    suspended_at = models.DateTimeField(_("停止日時"), null=True, blank=True)
    login_mode = models.CharField(
        _("住民のログイン方式"),
        max_length=32,
        choices=LoginMode.choices,
        default=LoginMode.VOUCHER_CODE,
    )
    # Newcomers a minute the waiting room lets into the resident pages (booking.resident.
    # waiting_room): None takes the platform's SESSHU_WAITING_ROOM_PER_MINUTE, 0 turns the
    # room off. Set per municipality, so that those opening at the same hour share the web
    # pods as the vendor decides (docs/operations.md 2.4).
    waiting_room_per_minute = models.PositiveIntegerField(
        _("待合室の受け入れ数（1分あたり）"), null=True, blank=True
    )
    key_provider = models.CharField(max_length=20)
    # The tenant's data key, wrapped by the key provider (KMS or the local master key). The
    # plain key exists only in process memory, for a short time. Emptied on decommissioning.
    wrapped_data_key = models.BinaryField(default=b"")
    key_destroyed_at = models.DateTimeField(null=True, blank=True)
    # Counts for the control plane, refreshed from inside the tenant: the public role cannot
    # read a tenant schema, and the vendor never needs more than numbers.
    stats = models.JSONField(default=dict, blank=True)
    stats_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    auto_create_schema = True
    auto_drop_schema = False  # dropping is the decommissioning service's job, with the key

    class Meta:
        ordering = ["code"]
        verbose_name = _("市区町村")
        verbose_name_plural = _("市区町村")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_open_to_residents(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(DomainMixin):
    class Meta:
        verbose_name = _("ドメイン")
