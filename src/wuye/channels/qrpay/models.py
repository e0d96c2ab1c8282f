"""What the QR core remembers: each provider order (out_trade_no ↔ order), every notification
received, the mismatches left for reconciliation, and refunds sent through a provider."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class QrTrade(models.Model):
    """One provider order for one of our orders: a dynamic QR (主扫) or a payment code (被扫)."""

    class Kind(models.TextChoices):
        NATIVE = "native", _("扫码(主扫)")
        MICROPAY = "micropay", _("付款码(被扫)")

    class State(models.TextChoices):
        OPEN = "open", _("等待付款")
        PAID = "paid", _("已付款")
        CLOSED = "closed", _("已关闭")
        FAILED = "failed", _("失败")
        UNKNOWN = "unknown", _("结果未知")

    order = models.ForeignKey(
        "payments.Order",
        on_delete=models.PROTECT,
        related_name="qr_trades",
        verbose_name=_("收款单"),
    )
    channel = models.CharField(_("支付方式"), max_length=20)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    out_trade_no = models.CharField(_("商户订单号"), max_length=32, unique=True)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    code_url = models.CharField(_("二维码链接"), max_length=512, blank=True)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.OPEN)
    message = models.CharField(_("说明"), max_length=200, blank=True)
    provider_txn_id = models.CharField(_("支付平台单号"), max_length=64, blank=True)
    funding_source = models.CharField(_("资金来源"), max_length=32, blank=True)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"))
    expires_at = models.DateTimeField(_("失效时间"))
    next_query_at = models.DateTimeField(_("下次查询"), db_index=True)
    recovered_by_query = models.BooleanField(_("查询补单"), default=False)
    closed_at = models.DateTimeField(_("完成/关闭时间"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "next_query_at"], name="qrtrade_due")]
        verbose_name = _("扫码交易")
        verbose_name_plural = _("扫码交易")

    def __str__(self) -> str:
        return f"{self.channel} {self.out_trade_no} {self.state}"


class QrNotification(models.Model):
    """A notification as received; the same one again only counts up ``times``."""

    class Outcome(models.TextChoices):
        POSTED = "posted", _("已入账")
        NOT_FINAL = "not_final", _("非最终状态")
        MISMATCH = "mismatch", _("金额或订单不符")
        UNKNOWN = "unknown", _("未知订单")
        REJECTED = "rejected", _("签名无效")
        REFUND = "refund", _("退款通知")
        ERROR = "error", _("处理出错")

    channel = models.CharField(_("支付方式"), max_length=20)
    notify_id = models.CharField(_("通知ID"), max_length=80)
    kind = models.CharField(_("类型"), max_length=10, blank=True)
    out_trade_no = models.CharField(_("商户订单号"), max_length=64, blank=True)
    reference = models.CharField(_("支付平台单号"), max_length=120, blank=True)
    amount_fen = models.BigIntegerField(_("金额(分)"), default=0)
    outcome = models.CharField(_("处理结果"), max_length=10, choices=Outcome.choices)
    message = models.CharField(_("说明"), max_length=200, blank=True)
    times = models.PositiveIntegerField(_("收到次数"), default=1)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(_("首次收到"))
    last_at = models.DateTimeField(_("最近收到"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "notify_id"], name="uniq_qr_notification")
        ]
        ordering = ["-id"]
        verbose_name = _("支付通知")
        verbose_name_plural = _("支付通知")

    def __str__(self) -> str:
        return f"{self.channel} {self.notify_id} {self.outcome}"


class QrException(models.Model):
    """Money a provider reports that does not fit our order: left for reconciliation."""

    class Kind(models.TextChoices):
        AMOUNT_MISMATCH = "amount", _("金额不符")
        UNKNOWN_TRADE = "unknown", _("未知订单")
        REFUND_FAILED = "refund", _("自动退款未完成")
        UNRECORDED_REFUND = "unrec_ref", _("渠道退款未入账")

    channel = models.CharField(_("支付方式"), max_length=20)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    out_trade_no = models.CharField(_("商户订单号"), max_length=64, blank=True)
    reference = models.CharField(_("支付平台单号"), max_length=120, blank=True)
    expected_fen = models.BigIntegerField(_("应收(分)"), null=True, blank=True)
    reported_fen = models.BigIntegerField(_("渠道金额(分)"), default=0)
    message = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("发现时间"))
    resolved_at = models.DateTimeField(_("处理时间"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "kind", "out_trade_no", "reference"], name="uniq_qr_exception"
            )
        ]
        ordering = ["-id"]
        verbose_name = _("扫码异常")
        verbose_name_plural = _("扫码异常")

    def __str__(self) -> str:
        return f"{self.channel} {self.kind} {self.out_trade_no}"


class QrRefund(models.Model):
    """A refund sent through a provider, tracked until the provider finishes it."""

    class State(models.TextChoices):
        PENDING = "pending", _("退款中")
        SUCCEEDED = "succeeded", _("已退款")
        FAILED = "failed", _("退款失败")

    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="qr_refunds"
    )
    channel = models.CharField(_("支付方式"), max_length=20)
    idempotency_key = models.CharField(max_length=120, unique=True)
    out_refund_no = models.CharField(_("商户退款单号"), max_length=64, blank=True)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    reason = models.CharField(_("原因"), max_length=200)
    automatic = models.BooleanField(_("自动退款"), default=False)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.PENDING)
    message = models.CharField(_("说明"), max_length=200, blank=True)
    provider_ref = models.CharField(_("渠道退款单号"), max_length=120, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        "payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("申请时间"))
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("扫码退款")
        verbose_name_plural = _("扫码退款")

    def __str__(self) -> str:
        return f"{self.channel} {self.out_refund_no} {self.state}"
