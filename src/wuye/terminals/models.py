"""Terminal management (TMS): the POS fleet, its keys, heartbeats, parameters, releases, and
the push queue between Wuye and each terminal (requests out, result reports back).

The terminal master key (TMK) is stored encrypted at rest (``core.crypto``) and shown only as
its key check value; the API token is stored as a hash and shown once. No card number ever
lands here: reports carry the masked PAN only (the API refuses anything else).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from wuye.core.crypto import EncryptedTextField


class Terminal(models.Model):
    """A POS terminal registered to a company, bound to one counter of one community."""

    class Kind(models.TextChoices):
        COUNTERTOP = "countertop", _("台式")
        HANDHELD = "handheld", _("手持")

    class Paper(models.TextChoices):
        OK = "ok", _("正常")
        LOW = "low", _("将尽")
        OUT = "out", _("缺纸")

    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    community = models.ForeignKey(
        "estates.Community", on_delete=models.PROTECT, related_name="+", verbose_name=_("小区")
    )
    merchant = models.ForeignKey(
        "merchants.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("收单商户"),
    )
    serial_no = models.CharField(_("序列号"), max_length=40, unique=True)
    model = models.CharField(_("型号"), max_length=60, blank=True)
    kind = models.CharField(_("类型"), max_length=12, choices=Kind.choices, default=Kind.COUNTERTOP)
    tid = models.CharField(_("终端号"), max_length=8, unique=True)
    mid = models.CharField(_("商户号"), max_length=15)
    counter_name = models.CharField(_("收费台"), max_length=40)
    location = models.CharField(_("布放地址"), max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(_("IP地址"), null=True, blank=True)
    network_cert_no = models.CharField(_("入网许可证号"), max_length=40, blank=True)
    tmk = EncryptedTextField(_("终端主密钥"), editable=False)
    tmk_kcv = models.CharField(_("主密钥校验值"), max_length=8)
    token_hash = models.CharField(max_length=128, editable=False)
    token_issued_at = models.DateTimeField(_("令牌签发时间"))
    enabled = models.BooleanField(_("启用"), default=True)
    registered_at = models.DateTimeField(_("登记时间"))
    # The last heartbeat, kept on the row for the fleet list (history in Heartbeat).
    last_seen_at = models.DateTimeField(_("最后在线"), null=True, blank=True, db_index=True)
    app_version = models.CharField(_("应用版本"), max_length=20, blank=True)
    params_version = models.PositiveIntegerField(_("终端参数版本"), default=0)
    batch_no = models.CharField(_("批次号"), max_length=6, blank=True)
    batch_open_count = models.PositiveIntegerField(_("未结算笔数"), default=0)
    last_txn_at = models.DateTimeField(_("最后交易"), null=True, blank=True)
    paper = models.CharField(_("纸张"), max_length=4, choices=Paper.choices, blank=True)
    battery = models.PositiveSmallIntegerField(_("电量"), null=True, blank=True)
    pending_reports = models.PositiveIntegerField(_("待上送结果"), default=0)
    training = models.BooleanField(_("培训模式"), default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["community", "counter_name"],
                condition=Q(enabled=True),
                name="uniq_enabled_terminal_per_counter",
            )
        ]
        ordering = ["tid"]
        verbose_name = _("终端")
        verbose_name_plural = _("终端")

    def __str__(self) -> str:
        return f"{self.tid} {self.counter_name}"

    @property
    def tmk_bytes(self) -> bytes:
        """The clear TMK (16 bytes); only for the acquirer host and the audited key export."""
        return bytes.fromhex(self.tmk)


class Heartbeat(models.Model):
    """One heartbeat as the terminal sent it."""

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="heartbeats")
    received_at = models.DateTimeField(_("时间"), db_index=True)
    app_version = models.CharField(_("应用版本"), max_length=20, blank=True)
    batch_no = models.CharField(_("批次号"), max_length=6, blank=True)
    batch_open_count = models.PositiveIntegerField(_("未结算笔数"), default=0)
    paper = models.CharField(_("纸张"), max_length=4, blank=True)
    battery = models.PositiveSmallIntegerField(_("电量"), null=True, blank=True)
    pending_reports = models.PositiveIntegerField(_("待上送结果"), default=0)
    pending_reversals = models.PositiveIntegerField(_("待冲正"), default=0)
    params_version = models.PositiveIntegerField(_("参数版本"), default=0)
    training = models.BooleanField(_("培训模式"), default=False)
    ip_address = models.GenericIPAddressField(_("IP地址"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("心跳")
        verbose_name_plural = _("心跳")

    def __str__(self) -> str:
        return f"{self.terminal_id} {self.received_at:%Y-%m-%d %H:%M:%S}"


class TerminalParams(models.Model):
    """One version of a terminal's remote parameters; the newest is pushed by heartbeat."""

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="param_sets")
    version = models.PositiveIntegerField(_("版本"))
    timeout_s = models.PositiveSmallIntegerField(_("交易超时(秒)"), default=30)
    receipt_header = models.CharField(_("签购单抬头"), max_length=60)
    entry_modes = models.JSONField(_("允许的读卡方式"), default=list)
    operators = models.JSONField(_("操作员"), default=list)
    training = models.BooleanField(_("培训模式"), default=False)
    created_at = models.DateTimeField(_("创建时间"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["terminal", "version"], name="uniq_terminal_params")
        ]
        ordering = ["-version"]
        verbose_name = _("终端参数")
        verbose_name_plural = _("终端参数")

    def __str__(self) -> str:
        return f"{self.terminal_id} v{self.version}"

    def as_wire(self) -> dict[str, object]:
        """The ``params`` object of the heartbeat answer (docs/terminal-api.md)."""
        return {
            "timeout_s": self.timeout_s,
            "receipt_header": self.receipt_header,
            "entry_modes": list(self.entry_modes),
            "operators": list(self.operators),
            "training": self.training,
        }


class Release(models.Model):
    """An application release for a company's terminals, rolled out to a share of them first."""

    class State(models.TextChoices):
        ROLLING = "rolling", _("分批推送中")
        COMPLETE = "complete", _("全部推送")
        ROLLED_BACK = "rolled_back", _("已回滚")

    company = models.ForeignKey("estates.Company", on_delete=models.PROTECT, related_name="+")
    version = models.CharField(_("版本"), max_length=20)
    url = models.URLField(_("下载地址"), max_length=300)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    notes = models.CharField(_("说明"), max_length=200, blank=True)
    share_pct = models.PositiveSmallIntegerField(_("推送比例(%)"), default=10)
    state = models.CharField(_("状态"), max_length=12, choices=State.choices, default=State.ROLLING)
    created_at = models.DateTimeField(_("创建时间"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(_("最后变更"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "version"], name="uniq_release_version"),
            models.CheckConstraint(condition=Q(share_pct__lte=100), name="release_share_pct"),
        ]
        ordering = ["-id"]
        verbose_name = _("应用版本")
        verbose_name_plural = _("应用版本")

    def __str__(self) -> str:
        return self.version


class TerminalRequest(models.Model):
    """A request Wuye pushes to a terminal (purchase, void, refund, balance, settle)."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("消费")
        VOID = "void", _("撤销")
        REFUND = "refund", _("退货")
        BALANCE = "balance", _("余额查询")
        SETTLE = "settle", _("结算")

    class State(models.TextChoices):
        QUEUED = "queued", _("已推送")
        ACCEPTED = "accepted", _("等待刷卡")
        DONE = "done", _("已完成")
        CANCELLED = "cancelled", _("已取消")
        EXPIRED = "expired", _("已过期")

    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.QUEUED)
    order = models.ForeignKey(
        "payments.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount_fen = models.BigIntegerField(_("金额(分)"))
    payee = models.CharField(_("收款方"), max_length=120, blank=True)
    reference = models.CharField(_("参考"), max_length=40, blank=True)
    original = models.JSONField(null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), db_index=True)
    expires_at = models.DateTimeField(_("过期时间"))
    accepted_at = models.DateTimeField(_("受理时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("结束时间"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["terminal", "state"], name="terminal_request_open")]
        verbose_name = _("终端请求")
        verbose_name_plural = _("终端请求")

    def __str__(self) -> str:
        return self.public_id

    @property
    def public_id(self) -> str:
        """The id the terminal sees (``R-000123``)."""
        return f"R-{self.pk:06d}"


class TerminalReport(models.Model):
    """A result the terminal reported, kept exactly once per ``report_id``."""

    class Status(models.TextChoices):
        POSTED = "posted", _("已入账")
        REFUNDED = "refunded", _("已退款")
        VOIDED = "voided", _("已撤销")
        RECORDED = "recorded", _("已记录")
        UNMATCHED = "unmatched", _("未匹配")

    report_id = models.CharField(max_length=60, unique=True)
    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="reports")
    request = models.ForeignKey(
        TerminalRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    kind = models.CharField(_("类型"), max_length=10, choices=TerminalRequest.Kind.choices)
    approved = models.BooleanField(_("承兑"))
    reversed = models.BooleanField(_("已冲正"), default=False)
    training = models.BooleanField(_("培训"), default=False)
    response_code = models.CharField(_("应答码"), max_length=2)
    message = models.CharField(_("信息"), max_length=60, blank=True)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    rrn = models.CharField(_("参考号"), max_length=12, blank=True)
    auth_code = models.CharField(_("授权码"), max_length=6, blank=True)
    masked_pan = models.CharField(_("卡号"), max_length=19, blank=True)
    card_type = models.CharField(_("卡类型"), max_length=10, blank=True)
    entry_mode = models.CharField(_("读卡方式"), max_length=10, blank=True)
    batch = models.CharField(_("批次号"), max_length=6)
    stan = models.CharField(_("凭证号"), max_length=6)
    txn_date = models.CharField(_("交易日期"), max_length=8, blank=True)
    txn_time = models.CharField(_("交易时间"), max_length=6, blank=True)
    settle_date = models.CharField(_("清算日期"), max_length=8, blank=True)
    original = models.JSONField(null=True, blank=True)
    status = models.CharField(_("处理结果"), max_length=10, choices=Status.choices)
    answer = models.JSONField(default=dict)
    exception = models.CharField(_("异常"), max_length=200, blank=True)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        "payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(_("接收时间"), db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["terminal", "batch"], name="terminal_report_batch")]
        verbose_name = _("终端交易结果")
        verbose_name_plural = _("终端交易结果")

    def __str__(self) -> str:
        return self.report_id


class Settlement(models.Model):
    """A terminal's end-of-day settlement, with Wuye's own totals for that TID and batch."""

    class Verdict(models.TextChoices):
        BALANCED = "balanced", _("对账平")
        NOT_BALANCED = "not_balanced", _("对账不平")

    report_id = models.CharField(max_length=60, unique=True)
    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, related_name="settlements")
    batch = models.CharField(_("批次号"), max_length=6)
    verdict = models.CharField(_("主机结论"), max_length=14, choices=Verdict.choices)
    debit_total_fen = models.BigIntegerField(_("借记总额(分)"))
    debit_count = models.PositiveIntegerField(_("借记笔数"))
    credit_total_fen = models.BigIntegerField(_("贷记总额(分)"))
    credit_count = models.PositiveIntegerField(_("贷记笔数"))
    settle_date = models.CharField(_("清算日期"), max_length=8)
    settled_at = models.DateTimeField(_("结算时间"))
    wuye_debit_total_fen = models.BigIntegerField(_("物业借记总额(分)"))
    wuye_debit_count = models.PositiveIntegerField(_("物业借记笔数"))
    wuye_credit_total_fen = models.BigIntegerField(_("物业贷记总额(分)"))
    wuye_credit_count = models.PositiveIntegerField(_("物业贷记笔数"))
    matches = models.BooleanField(_("与物业一致"))
    answer = models.JSONField(default=dict)
    received_at = models.DateTimeField(_("接收时间"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("终端结算")
        verbose_name_plural = _("终端结算")

    def __str__(self) -> str:
        return self.report_id
