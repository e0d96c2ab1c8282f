"""Fee items, effective-dated fee standards, billing runs, bills and what settles them.

Amounts are integer fen. Unit prices are Decimal yuan with 4 decimals (2.3500 元/m²·月);
the engine turns them into exact integers and rounds once per bill line (docs/billing.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from wuye.core.money import Rounding


class FeeItem(models.Model):
    """A kind of charge (物业费, 停车费, 水费…) with its late-fee and prepayment rules."""

    class Kind(models.TextChoices):
        PROPERTY = "property", _("物业费")
        PARKING = "parking", _("停车费")
        WATER = "water", _("水费")
        POWER = "power", _("电费")
        SHARED = "shared", _("公摊费")
        ONE_OFF = "one_off", _("一次性费用")
        OTHER = "other", _("其他")

    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="fee_items"
    )
    code = models.CharField(_("编号"), max_length=20)
    name = models.CharField(_("费项名称"), max_length=60)
    kind = models.CharField(_("类别"), max_length=10, choices=Kind.choices)
    rounding = models.CharField(
        _("取整规则"),
        max_length=10,
        choices=[(r.value, r.value) for r in Rounding],
        default=Rounding.HALF_UP.value,
    )
    due_days = models.PositiveSmallIntegerField(
        _("缴费期限(天)"), default=30, help_text=_("账期开始后多少天到期")
    )
    # Late fee (滞纳金): contractual, off by default.
    late_fee_enabled = models.BooleanField(_("计收滞纳金"), default=False)
    late_fee_daily_ppm = models.PositiveIntegerField(
        _("滞纳金日费率(百万分之)"), default=0, help_text=_("万分之五填 500")
    )
    late_fee_grace_days = models.PositiveSmallIntegerField(_("宽限天数"), default=0)
    late_fee_start_date = models.DateField(_("滞纳金起算日"), null=True, blank=True)
    late_fee_cap_percent = models.PositiveSmallIntegerField(_("滞纳金上限(本金%)"), default=100)
    prepay_offset = models.BooleanField(_("出账时自动抵扣预存"), default=True)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "code"], name="uniq_fee_item_code"),
            models.CheckConstraint(
                condition=Q(late_fee_cap_percent__lte=100), name="late_fee_cap_le_principal"
            ),
        ]
        ordering = ["company_id", "code"]
        verbose_name = _("收费项目")
        verbose_name_plural = _("收费项目")

    def __str__(self) -> str:
        return self.name


class FeeStandard(models.Model):
    """How much a fee item costs in a community for a unit type, from a date on.

    The standard in force on a day is the one with the latest ``effective_from`` on or before
    it; a price change mid-period splits the period by days.
    """

    class Method(models.TextChoices):
        AREA = "area", _("面积×单价")
        INNER_AREA = "inner_area", _("套内面积×单价")
        FIXED = "fixed", _("固定金额")
        METERED = "metered", _("按表计量(阶梯)")
        ONE_OFF = "one_off", _("一次性")

    fee_item = models.ForeignKey(FeeItem, on_delete=models.PROTECT, related_name="standards")
    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="fee_standards"
    )
    unit_type = models.CharField(
        _("房屋类型"), max_length=12, blank=True, help_text=_("留空适用于所有类型")
    )
    method = models.CharField(_("计费方式"), max_length=10, choices=Method.choices)
    unit_price = models.DecimalField(
        _("单价(元)"),
        max_digits=12,
        decimal_places=4,
        default=0,
        help_text=_("面积: 元/m²·月; 计量: 第一档单价; 固定/一次性: 不用"),
    )
    fixed_fen = models.BigIntegerField(_("固定金额/附加费(分/月)"), default=0)
    cycle_months = models.PositiveSmallIntegerField(
        _("计费周期(月)"),
        default=1,
        choices=[(1, _("月")), (3, _("季")), (6, _("半年")), (12, _("年"))],
    )
    vacant_percent = models.PositiveSmallIntegerField(_("空置房收费比例(%)"), default=100)
    bill_unsold = models.BooleanField(_("未售房收费"), default=False)
    effective_from = models.DateField(_("生效日期"))
    note = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fee_item", "community", "unit_type", "effective_from"],
                name="uniq_fee_standard_version",
            ),
            models.CheckConstraint(condition=Q(vacant_percent__lte=100), name="vacant_pct_le_100"),
        ]
        ordering = ["community_id", "fee_item_id", "unit_type", "-effective_from"]
        verbose_name = _("收费标准")
        verbose_name_plural = _("收费标准")

    def __str__(self) -> str:
        return f"{self.fee_item} {self.unit_type or '*'} ≥{self.effective_from}"


class PriceTier(models.Model):
    """A step of a tiered (阶梯) metered price: quantity in the period up to ``up_to``."""

    standard = models.ForeignKey(FeeStandard, on_delete=models.CASCADE, related_name="tiers")
    up_to = models.DecimalField(
        _("用量上限"),
        max_digits=14,
        decimal_places=3,
        null=True,
        blank=True,
        help_text=_("留空表示无上限"),
    )
    unit_price = models.DecimalField(_("单价(元)"), max_digits=12, decimal_places=4)

    class Meta:
        ordering = ["standard_id", F("up_to").asc(nulls_last=True)]
        verbose_name = _("阶梯价格")
        verbose_name_plural = _("阶梯价格")

    def __str__(self) -> str:
        return f"≤{self.up_to or '∞'} @ {self.unit_price}"


class BillingRun(models.Model):
    """One run of billing for a community and period. Re-running creates only differences."""

    class Status(models.TextChoices):
        RUNNING = "running", _("进行中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="billing_runs"
    )
    period_start = models.DateField(_("账期开始"))
    period_end = models.DateField(_("账期结束(不含)"))
    status = models.CharField(
        _("状态"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    bills_created = models.PositiveIntegerField(_("新出账单"), default=0)
    adjustments_created = models.PositiveIntegerField(_("调整账单"), default=0)
    unchanged = models.PositiveIntegerField(_("未变化"), default=0)
    total_fen = models.BigIntegerField(_("出账金额(分)"), default=0)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("出账批次")
        verbose_name_plural = _("出账批次")

    def __str__(self) -> str:
        return f"{self.community} {self.period_start}~{self.period_end}"


class Bill(models.Model):
    """A receivable (应收) line: one household, fee item and period.

    ``revision`` 0 is the original bill; a corrected standard adds revision 1, 2… holding the
    difference (an adjustment, possibly negative), never an edit. Outstanding =
    ``amount_fen - paid_fen - waived_fen``; ``paid_fen`` includes prepayment offsets.
    """

    class Kind(models.TextChoices):
        REGULAR = "regular", _("周期费用")
        METERED = "metered", _("抄表费用")
        ONE_OFF = "one_off", _("一次性费用")
        ADJUSTMENT = "adjustment", _("调整")
        OPENING = "opening", _("期初欠费")
        LATE_FEE = "late_fee", _("滞纳金")

    # community and unit need no single-column index of their own: the (community,
    # period_start), (unit, due_date) and uniq_bill_line indexes lead with them. Every index
    # is paid for on each of a billing run's million inserts.
    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    unit = models.ForeignKey(
        "estates.Unit", on_delete=models.PROTECT, related_name="bills", db_index=False
    )
    fee_item = models.ForeignKey(FeeItem, on_delete=models.PROTECT, related_name="bills")
    period_start = models.DateField(_("账期开始"))
    period_end = models.DateField(_("账期结束(不含)"))
    revision = models.PositiveSmallIntegerField(_("版本"), default=0)
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.REGULAR)
    amount_fen = models.BigIntegerField(_("应收(分)"))
    paid_fen = models.BigIntegerField(_("已收(分)"), default=0)
    waived_fen = models.BigIntegerField(_("减免(分)"), default=0)
    due_date = models.DateField(_("到期日"))
    quantity = models.DecimalField(
        _("用量/面积"), max_digits=14, decimal_places=3, null=True, blank=True
    )
    description = models.CharField(_("说明"), max_length=200, blank=True)
    run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="bills"
    )
    # A late-fee bill points at the bill it was charged on.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    issued_on = models.DateField(_("出账日期"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "fee_item", "period_start", "kind", "revision"],
                name="uniq_bill_line",
            ),
            # Settlements never exceed the bill (on the bill's own side of zero).
            models.CheckConstraint(
                condition=(
                    (
                        Q(amount_fen__gte=0, paid_fen__gte=0, waived_fen__gte=0)
                        & Q(amount_fen__gte=F("paid_fen") + F("waived_fen"))
                    )
                    | Q(
                        amount_fen__lt=0,
                        paid_fen__lte=0,
                        waived_fen=0,
                        amount_fen__lte=F("paid_fen"),
                    )
                ),
                name="bill_settled_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["unit", "due_date"]),
            models.Index(fields=["community", "period_start"]),
            # Partial: only late-fee bills have a parent, so the run's inserts skip it.
            models.Index(
                fields=["parent"], condition=Q(parent__isnull=False), name="bill_parent_idx"
            ),
        ]
        ordering = ["unit_id", "due_date", "id"]
        verbose_name = _("账单")
        verbose_name_plural = _("账单")

    def __str__(self) -> str:
        return f"{self.fee_item} {self.period_start:%Y-%m} {self.amount_fen}"

    @property
    def outstanding_fen(self) -> int:
        return self.amount_fen - self.paid_fen - self.waived_fen


class Allocation(models.Model):
    """A first-class line that settles (part of) a bill, so it can be undone exactly.

    Sources: a payment (issue: payments), the prepaid balance, a waiver, or a credit note
    (negative adjustment bill) netted against the bill. A reversal is a new row with the
    opposite amount that points at the one it undoes.
    """

    class Source(models.TextChoices):
        PAYMENT = "payment", _("收款")
        PREPAID = "prepaid", _("预存抵扣")
        WAIVER = "waiver", _("减免")
        CREDIT_NOTE = "credit_note", _("调减冲抵")

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="allocations")
    source = models.CharField(_("来源"), max_length=12, choices=Source.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    allocated_on = models.DateField(_("日期"))
    entry = models.ForeignKey(
        "ledger.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reference = models.CharField(_("关联单号"), max_length=64, blank=True, db_index=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["bill_id", "id"]
        verbose_name = _("销账明细")
        verbose_name_plural = _("销账明细")

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.amount_fen}"


class Waiver(models.Model):
    """A waiver or discount (减免) on a bill's principal or on its late fee, with approval."""

    class Target(models.TextChoices):
        PRINCIPAL = "principal", _("本金")
        LATE_FEE = "late_fee", _("滞纳金")

    class State(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="waivers")
    target = models.CharField(_("减免对象"), max_length=10, choices=Target.choices)
    amount_fen = models.BigIntegerField(
        _("减免金额(分)"), null=True, blank=True, help_text=_("滞纳金全免可留空")
    )
    reason = models.CharField(_("原因"), max_length=200)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("申请人"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("审批人"),
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    effective_date = models.DateField(_("生效日期"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__gt=0), name="waiver_positive"
            )
        ]
        ordering = ["-id"]
        verbose_name = _("减免")
        verbose_name_plural = _("减免")

    def __str__(self) -> str:
        return f"{self.bill} {self.get_target_display()} {self.amount_fen}"
