"""The import log and the opening balances brought over from a company's old system."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportBatch(models.Model):
    """One upload of a spreadsheet: what it was, what came of it, and its error report."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("处理中")
        VALIDATED = "validated", _("校验通过(试导入)")
        IMPORTED = "imported", _("已导入")
        REJECTED = "rejected", _("有错误, 未导入")
        FAILED = "failed", _("失败")

    company = models.ForeignKey(
        "estates.Company", on_delete=models.CASCADE, related_name="+", verbose_name=_("物业公司")
    )
    kind = models.CharField(_("数据类型"), max_length=20)
    file_name = models.CharField(_("文件名"), max_length=200)
    sha256 = models.CharField(_("文件摘要"), max_length=64, db_index=True)
    dry_run = models.BooleanField(_("试导入"), default=False)
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    rows_total = models.PositiveIntegerField(_("行数"), default=0)
    created_count = models.PositiveIntegerField(_("新增"), default=0)
    updated_count = models.PositiveIntegerField(_("更新"), default=0)
    unchanged_count = models.PositiveIntegerField(_("未变"), default=0)
    error_count = models.PositiveIntegerField(_("错误数"), default=0)
    # [{"row": 5, "column": "建筑面积(m²)", "message": "...", "message_en": "..."}, ...]
    errors = models.JSONField(_("错误"), default=list, blank=True)
    source_file = models.FileField(_("上传文件"), upload_to="imports/%Y/%m/", blank=True)
    error_file = models.FileField(_("错误报告"), upload_to="imports/%Y/%m/", blank=True)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["company", "kind", "sha256"])]
        verbose_name = _("导入批次")
        verbose_name_plural = _("导入批次")

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name} {self.status}"


class OpeningBalance(models.Model):
    """An arrear or prepayment carried over from the old system, imported exactly once.

    ``row_key`` is the row's natural key (``arrears:<unit>:<fee item>:<period start>`` or
    ``prepaid:<unit>:<fee item or 0>``); its unique constraint is what makes importing the
    same file twice post once.
    """

    class Kind(models.TextChoices):
        ARREARS = "arrears", _("期初欠费")
        PREPAID = "prepaid", _("期初预存")

    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    row_key = models.CharField(max_length=80)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    unit = models.ForeignKey("estates.Unit", on_delete=models.PROTECT, related_name="+")
    fee_item = models.ForeignKey(
        "billing.FeeItem", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateField(_("账期开始"), null=True, blank=True)
    period_end = models.DateField(_("账期结束(不含)"), null=True, blank=True)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    bill = models.OneToOneField(
        "billing.Bill", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entry = models.ForeignKey("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(_("备注"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "row_key"], name="uniq_opening_row"),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gt=0), name="opening_amount_positive"
            ),
        ]
        ordering = ["unit_id", "kind", "period_start"]
        verbose_name = _("期初余额")
        verbose_name_plural = _("期初余额")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.unit_id} {self.amount_fen}"
