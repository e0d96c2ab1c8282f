"""Reconciliation (对账) data: imported files, their rows, runs and the differences found.

- ``SourceFile``: one imported file (acquirer settlement file, WeChat trade bill, Alipay bill,
  bank statement as CSV or MT940). ``sha256`` is unique per company, so importing the same
  bytes twice adds nothing. Totals are what the file's own trailer/summary promised (checked
  against the rows on import).
- ``ChannelRecord``: one transaction row of a channel file. ``amount_fen`` is signed
  (refunds negative). ``fee_milli_fen`` is the fee in thousandths of a fen (WeChat fees carry
  five decimals of a yuan = 1/1000 fen; card and Alipay fees are whole fen × 1000), signed
  like the amount. ``reference`` is the channel's id (RRN / 微信订单号 / 支付宝交易号);
  ``order_no`` is ours (商户订单号); refunds carry the original payment's reference in
  ``orig_reference``.
- ``ChannelSettlement``: what a channel promised to pay for one merchant and settlement date
  (gross, fee rounded per the channel's rule, net); the arrival side of matching compares it
  with the bank credit. Unique per (company, channel, merchant, settle_date).
- ``BankMovement``: one line of the company's bank statement; ``serial_no`` unique per
  account, so the CSV and the MT940 of one day import to the same rows once. A credit whose
  memo names a merchant number and a date is *recognised* as that channel's settlement.
- ``ReconRun``: one matching run for (company, channel, settle_date) with per-category counts.
- ``ReconException``: one difference. ``key`` identifies the difference (category, channel,
  date, reference…) and is unique per company: re-running a day updates the open exception
  instead of adding a second one. State: open → resolved / dismissed (by finance) or
  auto_resolved (by a rule, or because a re-run no longer finds it).
- ``ReconExceptionEvent``: the exception's history (who, when, action, note, data).
- ``ReconExceptionEntry``: the journal entries its resolutions posted (and their reversals).
  An exception being chased (``chasing_since``, ``chased_by``, ``follow_up_on``) stays open.

Channels are the payment channel codes of ``payments.Payment.channel``: ``card``, ``wechat``,
``alipay``. Money is integer fen everywhere.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    CARD = "card", _("银行卡")
    WECHAT = "wechat", _("微信支付")
    ALIPAY = "alipay", _("支付宝")


#: ``merchants.Merchant.channel`` for each reconciliation channel.
MERCHANT_CHANNEL = {"card": "acquirer", "wechat": "wechat", "alipay": "alipay"}


class SourceFile(models.Model):
    class Kind(models.TextChoices):
        ACQUIRER = "acquirer", _("收单结算文件")
        WECHAT = "wechat", _("微信交易账单")
        ALIPAY = "alipay", _("支付宝账单")
        BANK_CSV = "bank_csv", _("银行流水(CSV)")
        BANK_MT940 = "bank_mt940", _("银行流水(MT940)")

    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices)
    original_name = models.CharField(_("文件名"), max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(_("大小(字节)"), default=0)
    row_count = models.PositiveIntegerField(_("行数"), default=0)
    total_fen = models.BigIntegerField(_("金额合计(分)"), default=0)
    fee_milli_fen = models.BigIntegerField(_("手续费合计(厘分)"), default=0)
    net_fen = models.BigIntegerField(_("净额合计(分)"), default=0)
    account_no = models.CharField(_("银行账号"), max_length=40, blank=True)
    # A large channel file keeps its rows columnar (``store.parquet_path``: one Parquet file
    # per SourceFile) instead of one ChannelRecord each; only the rows an exception links to
    # are copied into ChannelRecord (``store.records_materialise``).
    columnar = models.BooleanField(_("列式存储"), default=False, db_default=False)
    imported_at = models.DateTimeField(_("导入时间"))
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("导入人"),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "sha256"], name="uniq_recon_file_sha")
        ]
        ordering = ["-id"]
        verbose_name = _("对账文件")
        verbose_name_plural = _("对账文件")

    def __str__(self) -> str:
        return f"{self.kind} {self.original_name}"


class ChannelRecord(models.Model):
    class Kind(models.TextChoices):
        PAYMENT = "payment", _("收款")
        REFUND = "refund", _("退款")

    # Rows are written only by the importer, a file's rows all with the SourceFile it has just
    # created in the same transaction and that file's company (whose own foreign keys the
    # database checks once per file). No database constraint on these two: PostgreSQL checks
    # a foreign key with a trigger per row, which at a million rows cost more than the rows
    # themselves (bench/RESULTS.md). PROTECT still guards deletes made through Django.
    source = models.ForeignKey(
        SourceFile, on_delete=models.PROTECT, related_name="records", db_constraint=False
    )
    # No index of its own: recon_rec_day starts with company (a million-row import maintains
    # each index per row, so only the indexes a query uses are kept).
    company = models.ForeignKey(
        "estates.Company",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    merchant_no = models.CharField(_("商户号"), max_length=32)
    settle_date = models.DateField(_("结算日期"))
    txn_at = models.DateTimeField(_("交易时间"))
    reference = models.CharField(_("渠道流水号"), max_length=64)
    order_no = models.CharField(_("商户订单号"), max_length=64, blank=True)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    fee_milli_fen = models.BigIntegerField(_("手续费(厘分)"), default=0)
    net_fen = models.BigIntegerField(_("净额(分)"))
    masked_pan = models.CharField(_("卡号"), max_length=19, blank=True)
    card_type = models.CharField(_("卡类型"), max_length=16, blank=True)
    funding_source = models.CharField(_("资金来源"), max_length=32, blank=True)
    orig_reference = models.CharField(_("原交易流水号"), max_length=64, blank=True)
    refund_reference = models.CharField(_("退款单号"), max_length=64, blank=True)
    auth_code = models.CharField(_("授权码"), max_length=16, blank=True)
    tid = models.CharField(_("终端号"), max_length=16, blank=True)
    batch = models.CharField(_("批次号"), max_length=12, blank=True)
    stan = models.CharField(_("凭证号"), max_length=12, blank=True)
    line_no = models.PositiveIntegerField(_("行号"))
    # The importer marks a row repeating the (kind, reference) of an earlier row: earlier in
    # the same file, or already imported for the channel within ``store.DUP_WINDOW_DAYS`` of
    # its settlement date. Matching leaves marked rows out and reports them as duplicates.
    is_duplicate = models.BooleanField(_("重复"), default=False, db_default=False)

    class Meta:
        indexes = [
            # matching loads a channel's window of settlement dates; nothing looks a record up
            # by reference in the database (matching joins references in DuckDB).
            models.Index(fields=["company", "channel", "settle_date"], name="recon_rec_day"),
        ]
        ordering = ["id"]
        verbose_name = _("渠道交易记录")
        verbose_name_plural = _("渠道交易记录")

    def __str__(self) -> str:
        return f"{self.channel} {self.reference} {self.amount_fen}"


class ChannelSettlement(models.Model):
    """What a channel promised to credit for one merchant and settlement date."""

    source = models.ForeignKey(SourceFile, on_delete=models.PROTECT, related_name="settlements")
    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    merchant_no = models.CharField(_("商户号"), max_length=32)
    settle_date = models.DateField(_("结算日期"))
    row_count = models.PositiveIntegerField(_("笔数"), default=0)
    gross_fen = models.BigIntegerField(_("交易金额(分)"))
    fee_fen = models.BigIntegerField(_("手续费(分)"))
    net_fen = models.BigIntegerField(_("应结净额(分)"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "channel", "merchant_no", "settle_date"],
                name="uniq_recon_settlement",
            )
        ]
        ordering = ["-settle_date", "channel"]
        verbose_name = _("渠道结算")
        verbose_name_plural = _("渠道结算")

    def __str__(self) -> str:
        return f"{self.channel} {self.merchant_no} {self.settle_date} {self.net_fen}"


class BankMovement(models.Model):
    class Direction(models.TextChoices):
        CREDIT = "C", _("收入")
        DEBIT = "D", _("支出")

    source = models.ForeignKey(SourceFile, on_delete=models.PROTECT, related_name="movements")
    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    account_no = models.CharField(_("银行账号"), max_length=40)
    serial_no = models.CharField(_("流水号"), max_length=64)
    txn_date = models.DateField(_("交易日期"))
    value_date = models.DateField(_("起息日期"))
    direction = models.CharField(_("方向"), max_length=1, choices=Direction.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    balance_fen = models.BigIntegerField(_("余额(分)"), null=True, blank=True)
    counterparty_name = models.CharField(_("对方户名"), max_length=120, blank=True)
    counterparty_account = models.CharField(_("对方账号"), max_length=40, blank=True)
    memo = models.CharField(_("摘要"), max_length=255, blank=True)
    channel = models.CharField(_("识别渠道"), max_length=10, choices=Channel.choices, blank=True)
    merchant_no = models.CharField(_("识别商户号"), max_length=32, blank=True)
    settle_date = models.DateField(_("识别结算日期"), null=True, blank=True)
    line_no = models.PositiveIntegerField(_("行号"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "account_no", "serial_no"], name="uniq_bank_serial"
            ),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="bank_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["company", "channel", "settle_date"], name="recon_bank_day"),
        ]
        ordering = ["txn_date", "id"]
        verbose_name = _("银行流水")
        verbose_name_plural = _("银行流水")

    def __str__(self) -> str:
        return f"{self.account_no} {self.serial_no} {self.direction}{self.amount_fen}"


class Category(models.TextChoices):
    INTERNAL_ONLY = "internal_only", _("我方单边(长款)")
    CHANNEL_ONLY = "channel_only", _("渠道单边")
    AMOUNT_MISMATCH = "amount_mismatch", _("金额不符")
    DUPLICATE = "duplicate", _("重复")
    FEE_MISMATCH = "fee_mismatch", _("手续费不符")
    ARRIVAL_MISSING = "arrival_missing", _("未到账")
    ARRIVAL_LATE = "arrival_late", _("到账延迟")
    ARRIVAL_SHORT = "arrival_short", _("到账金额不符")


class ReconRun(models.Model):
    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    settle_date = models.DateField(_("结算日期"))
    started_at = models.DateTimeField(_("开始时间"))
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("执行人"),
    )
    internal_count = models.PositiveIntegerField(_("我方笔数"), default=0)
    internal_fen = models.BigIntegerField(_("我方金额(分)"), default=0)
    channel_count = models.PositiveIntegerField(_("渠道笔数"), default=0)
    channel_fen = models.BigIntegerField(_("渠道金额(分)"), default=0)
    matched_count = models.PositiveIntegerField(_("已匹配笔数"), default=0)
    matched_fen = models.BigIntegerField(_("已匹配金额(分)"), default=0)
    exception_count = models.PositiveIntegerField(_("差异笔数"), default=0)
    # {category: {"count": n, "amount_fen": m}} for every category found in this run.
    categories = models.JSONField(_("差异分类"), default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["company", "settle_date"], name="recon_run_day")]
        ordering = ["-started_at", "-id"]
        verbose_name = _("对账批次")
        verbose_name_plural = _("对账批次")

    def __str__(self) -> str:
        return f"{self.channel} {self.settle_date}"


class ReconException(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("待处理")
        RESOLVED = "resolved", _("已处理")
        AUTO_RESOLVED = "auto_resolved", _("自动处理")
        DISMISSED = "dismissed", _("已忽略")

    run = models.ForeignKey(ReconRun, on_delete=models.PROTECT, related_name="exceptions")
    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    settle_date = models.DateField(_("结算日期"))
    category = models.CharField(_("差异类型"), max_length=20, choices=Category.choices)
    key = models.CharField(max_length=200)
    reference = models.CharField(_("流水号"), max_length=64, blank=True)
    order_no = models.CharField(_("商户订单号"), max_length=64, blank=True)
    merchant_no = models.CharField(_("商户号"), max_length=32, blank=True)
    amount_fen = models.BigIntegerField(_("金额(分)"), default=0)
    expected_fen = models.BigIntegerField(_("应为(分)"), null=True, blank=True)
    actual_fen = models.BigIntegerField(_("实际(分)"), null=True, blank=True)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        "payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel_record = models.ForeignKey(
        ChannelRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    settlement = models.ForeignKey(
        ChannelSettlement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bank_movement = models.ForeignKey(
        BankMovement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.CharField(_("说明"), max_length=255, blank=True)
    state = models.CharField(_("状态"), max_length=14, choices=State.choices, default=State.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("负责人"),
    )
    created_at = models.DateTimeField(_("发现时间"))
    last_seen_at = models.DateTimeField(_("最近发现时间"))
    resolution = models.CharField(_("处理方式"), max_length=40, blank=True)
    resolution_note = models.TextField(_("处理说明"), blank=True)
    resolved_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("处理人"),
    )
    entry = models.ForeignKey(
        "ledger.JournalEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Every journal entry a resolution of this exception posted, and the reversals an undo
    # posted (``ReconExceptionEntry``); ``entry`` above is the resolution's last one.
    entries = models.ManyToManyField(
        "ledger.JournalEntry",
        through="ReconExceptionEntry",
        related_name="+",
        blank=True,
        verbose_name=_("相关凭证"),
    )
    # Chasing a missing, late or short arrival: the exception stays ``open`` (a re-run that
    # finds the money closes it), these say who chases it and when to follow up.
    chasing_since = models.DateTimeField(_("催查开始"), null=True, blank=True)
    chased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("催查人"),
    )
    follow_up_on = models.DateField(_("跟进日期"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "key"], name="uniq_recon_exception_key")
        ]
        indexes = [
            models.Index(fields=["company", "settle_date", "channel"], name="recon_exc_day"),
            models.Index(fields=["company", "state"], name="recon_exc_state"),
        ]
        ordering = ["-settle_date", "channel", "category", "id"]
        verbose_name = _("对账差异")
        verbose_name_plural = _("对账差异")

    def __str__(self) -> str:
        return f"{self.category} {self.channel} {self.reference} {self.amount_fen}"


class ReconExceptionEvent(models.Model):
    exception = models.ForeignKey(ReconException, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("时间"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )
    action = models.CharField(_("动作"), max_length=40)
    note = models.TextField(_("备注"), blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["exception_id", "at", "id"]
        verbose_name = _("差异处理记录")
        verbose_name_plural = _("差异处理记录")

    def __str__(self) -> str:
        return f"{self.exception_id} {self.action}"


class ReconExceptionEntry(models.Model):
    """A journal entry posted for an exception: by a resolution (``posted``) or by the undo
    of one (``reversal``). One resolution can post several (an arrival in two credits)."""

    class Role(models.TextChoices):
        POSTED = "posted", _("处理凭证")
        REVERSAL = "reversal", _("撤销冲正")

    exception = models.ForeignKey(
        ReconException, on_delete=models.CASCADE, related_name="entry_links"
    )
    entry = models.ForeignKey("ledger.JournalEntry", on_delete=models.PROTECT, related_name="+")
    role = models.CharField(_("作用"), max_length=10, choices=Role.choices)
    action = models.CharField(_("动作"), max_length=40)
    at = models.DateTimeField(_("时间"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["exception", "entry"], name="uniq_recon_exception_entry"
            )
        ]
        ordering = ["exception_id", "entry_id"]
        verbose_name = _("差异相关凭证")
        verbose_name_plural = _("差异相关凭证")

    def __str__(self) -> str:
        return f"{self.exception_id} {self.role} {self.entry_id}"
