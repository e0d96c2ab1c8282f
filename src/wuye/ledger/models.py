"""The double-entry, append-only journal, in fen.

An account is a *kind* plus dimensions (company, community, household, fee item, channel,
cashier) on each line, not one account row per household. A line's ``amount_fen`` is signed:
debit positive, credit negative; every entry's lines sum to zero. Entries and lines are never
updated or deleted: database triggers refuse it (see migration 0002); a correction is a
reversing entry.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    """Account kinds, with their normal balance side in the comment."""

    RECEIVABLE = "receivable", _("应收账款")  # debit: what households owe
    PREPAID = "prepaid", _("预收/预存款")  # credit: households' prepaid balances
    REVENUE = "revenue", _("收费收入")  # credit: per fee item
    LATE_FEE_REVENUE = "late_fee_revenue", _("滞纳金收入")  # credit
    WAIVER_EXPENSE = "waiver_expense", _("减免")  # debit: contra-revenue
    OPENING_BALANCE = "opening_balance", _("期初余额")  # migration from an old system
    CASH = "cash", _("库存现金")  # debit: per cashier
    CLEARING = "clearing", _("待清算款")  # debit: per channel, money in transit
    BANK = "bank", _("银行存款")  # debit
    FEE_EXPENSE = "fee_expense", _("手续费")  # debit: channel fees
    REFUND_PAYABLE = "refund_payable", _("应退款")  # credit
    CASH_OVER_SHORT = "cash_over_short", _("现金长短款")  # debit: shortages, credit: overages


class AppendOnly(models.Model):
    """Refuse updates and deletes from Python (PostgreSQL also refuses them in triggers)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("ledger is append-only: post a reversing entry instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("ledger is append-only: post a reversing entry instead")


class JournalEntry(AppendOnly):
    """One balanced posting: why money moved, when, and on whose behalf."""

    class Kind(models.TextChoices):
        BILLING = "billing", _("出账")
        ADJUSTMENT = "adjustment", _("调整")
        OPENING = "opening", _("期初导入")
        PREPAY_OFFSET = "prepay_offset", _("预存抵扣")
        WAIVER = "waiver", _("减免")
        LATE_FEE = "late_fee", _("滞纳金")
        PAYMENT = "payment", _("收款")
        REFUND = "refund", _("退款")
        SETTLEMENT = "settlement", _("清算")
        ARRIVAL = "arrival", _("到账")
        REVERSAL = "reversal", _("冲正")

    # Dimension columns (company, created_by; a line's community, household, fee item,
    # cashier): no database foreign key, see docs/adr/0005-dimension-columns.md.
    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices)
    memo = models.CharField(_("摘要"), max_length=200)
    effective_date = models.DateField(_("记账日期"), db_index=True)
    # Caller-made key: posting the same event twice returns the first entry.
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("记账凭证")
        verbose_name_plural = _("记账凭证")

    def __str__(self) -> str:
        return f"#{self.pk} {self.effective_date} {self.memo}"


class JournalLine(AppendOnly):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.CharField(_("科目"), max_length=20, choices=AccountKind.choices)
    amount_fen = models.BigIntegerField(_("金额(分, 借正贷负)"))
    community = models.ForeignKey(
        "estates.Community",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    household = models.ForeignKey(
        "estates.Unit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    fee_item = models.ForeignKey(
        "billing.FeeItem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    channel = models.CharField(_("渠道"), max_length=20, blank=True)
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        indexes = [
            models.Index(fields=["account", "household"]),
            models.Index(fields=["account", "community"]),
        ]
        verbose_name = _("分录")
        verbose_name_plural = _("分录")

    def __str__(self) -> str:
        return f"{self.account} {self.amount_fen}"
