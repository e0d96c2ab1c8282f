"""Merchant set-up: what a company signed with each payment institution.

Per channel the merchant numbers and settlement account, the contracted fee rates by card type
(effective-dated), the documents on file with their expiry dates, and which communities and fee
items each merchant collects for. Money always settles to the company's own account (一清).
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from wuye.estates.validators import validate_bank_account


class Channel(models.TextChoices):
    ACQUIRER = "acquirer", _("银行卡收单")
    WECHAT = "wechat", _("微信支付")
    ALIPAY = "alipay", _("支付宝")


class Merchant(models.Model):
    company = models.ForeignKey(
        "estates.Company", on_delete=models.PROTECT, related_name="merchants"
    )
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    name = models.CharField(_("商户名称"), max_length=120, help_text=_("终端和小票上显示的收款方"))
    institution = models.CharField(_("收单机构"), max_length=120, blank=True)
    merchant_no = models.CharField(
        _("商户号"), max_length=32, help_text=_("收单商户号(MID)、微信商户号或支付宝PID")
    )
    app_id = models.CharField(_("AppID"), max_length=40, blank=True)
    bank_name = models.CharField(_("结算开户行"), max_length=120)
    bank_account_name = models.CharField(_("结算账户名"), max_length=120)
    bank_account_no = models.CharField(
        _("结算账号"), max_length=40, validators=[validate_bank_account]
    )
    settlement_days = models.PositiveSmallIntegerField(_("结算周期(T+N工作日)"), default=1)
    communities = models.ManyToManyField(
        "estates.Community", blank=True, related_name="merchants", verbose_name=_("收款小区")
    )
    fee_items = models.ManyToManyField(
        "billing.FeeItem",
        blank=True,
        related_name="merchants",
        verbose_name=_("收款费项"),
        help_text=_("留空表示所有费项"),
    )
    signed_on = models.DateField(_("签约日期"), null=True, blank=True)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "merchant_no"], name="uniq_merchant_channel_no"
            )
        ]
        verbose_name = _("收款商户")
        verbose_name_plural = _("收款商户")

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.merchant_no} {self.name}"


class CardType(models.TextChoices):
    DEBIT = "debit", _("借记卡")
    CREDIT = "credit", _("贷记卡")
    QR_BALANCE = "qr_balance", _("扫码-余额/借记")
    QR_CREDIT = "qr_credit", _("扫码-信用卡/花呗")
    ANY = "any", _("全部")


class FeeRate(models.Model):
    """A contracted fee (MDR) for one card type from a date: rate, per-transaction cap, minimum.

    ``rate_ppm`` is parts per million of the amount (0.6% = 6000).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="fee_rates")
    card_type = models.CharField(_("卡类型"), max_length=12, choices=CardType.choices)
    rate_ppm = models.PositiveIntegerField(_("费率(百万分之)"), help_text=_("0.6% 填 6000"))
    cap_fen = models.BigIntegerField(
        _("单笔封顶(分)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    min_fen = models.BigIntegerField(
        _("单笔最低(分)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    effective_from = models.DateField(_("生效日期"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "card_type", "effective_from"], name="uniq_fee_rate"
            ),
            models.CheckConstraint(condition=Q(rate_ppm__lte=100_000), name="fee_rate_le_10pct"),
            models.CheckConstraint(
                condition=Q(cap_fen__isnull=True)
                | Q(min_fen__isnull=True)
                | Q(cap_fen__gte=models.F("min_fen")),
                name="fee_cap_ge_min",
            ),
        ]
        ordering = ["merchant_id", "card_type", "-effective_from"]
        verbose_name = _("签约费率")
        verbose_name_plural = _("签约费率")

    def __str__(self) -> str:
        return f"{self.get_card_type_display()} {self.rate_ppm / 10000:.4g}% ≥{self.effective_from}"


class MerchantDocument(models.Model):
    """A contract or qualification on file (营业执照, 税务登记, 服务合同, 收单协议…)."""

    class Kind(models.TextChoices):
        BUSINESS_LICENCE = "business_licence", _("营业执照")
        TAX_REGISTRATION = "tax_registration", _("税务登记")
        SERVICE_CONTRACT = "service_contract", _("物业服务合同")
        ACQUIRING_AGREEMENT = "acquiring_agreement", _("收单/支付服务协议")
        BANK_ACCOUNT_PERMIT = "bank_account_permit", _("开户许可/账户证明")
        LEGAL_REP_ID = "legal_rep_id", _("法人身份证明")
        OTHER = "other", _("其他")

    company = models.ForeignKey(
        "estates.Company", on_delete=models.CASCADE, related_name="documents"
    )
    merchant = models.ForeignKey(
        Merchant, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    community = models.ForeignKey(
        "estates.Community", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(_("类型"), max_length=24, choices=Kind.choices)
    title = models.CharField(_("名称"), max_length=120)
    number = models.CharField(_("证照/合同编号"), max_length=60, blank=True)
    issued_on = models.DateField(_("签发日期"), null=True, blank=True)
    expires_on = models.DateField(_("到期日期"), null=True, blank=True, help_text=_("长期有效留空"))
    file = models.FileField(_("文件"), upload_to="documents/%Y/", blank=True)

    class Meta:
        ordering = ["expires_on"]
        verbose_name = _("资质与合同")
        verbose_name_plural = _("资质与合同")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.title}"
