"""The cashier's counter: shifts (交班) and the cash paid in and out during a shift.

A *shift* is one cashier at one counter from opening (with a float of change in the drawer) to
closing (cash counted against cash expected). A cashier has at most one open shift; a day may
have several shifts. Cash payments and cash refunds taken during a shift point at it
(``payments.Payment.shift``); cash paid in or out that is not a payment (more change from the
safe, a banking run) is a ``CashMovement`` with its own balanced ledger entry.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Shift(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("当班中")
        CLOSED = "closed", _("已交班")

    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="shifts",
        verbose_name=_("收银员"),
    )
    community = models.ForeignKey(
        "estates.Community",
        on_delete=models.PROTECT,
        related_name="shifts",
        verbose_name=_("小区"),
    )
    counter_name = models.CharField(_("收费台"), max_length=40, blank=True)
    state = models.CharField(_("状态"), max_length=10, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(_("开班时间"), db_index=True)
    opening_float_fen = models.BigIntegerField(_("备用金(分)"), default=0)
    closed_at = models.DateTimeField(_("交班时间"), null=True, blank=True)
    counted_cash_fen = models.BigIntegerField(_("实点现金(分)"), null=True, blank=True)
    expected_cash_fen = models.BigIntegerField(_("应有现金(分)"), null=True, blank=True)
    difference_fen = models.BigIntegerField(_("长短款(分)"), null=True, blank=True)
    difference_note = models.CharField(_("差异说明"), max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cashier"],
                condition=Q(state="open"),
                name="uniq_open_shift_per_cashier",
            ),
            models.CheckConstraint(
                condition=Q(opening_float_fen__gte=0), name="shift_float_not_negative"
            ),
        ]
        ordering = ["-opened_at"]
        verbose_name = _("班次")
        verbose_name_plural = _("班次")

    def __str__(self) -> str:
        return f"#{self.pk} {self.counter_name} {self.opened_at:%Y-%m-%d %H:%M}"


class CashMovement(models.Model):
    """Cash put into or taken out of the drawer that is not a payment or refund."""

    class Kind(models.TextChoices):
        PAID_IN = "paid_in", _("现金存入")
        PAID_OUT = "paid_out", _("现金取出")

    shift = models.ForeignKey(
        Shift, on_delete=models.PROTECT, related_name="movements", verbose_name=_("班次")
    )
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    amount_fen = models.BigIntegerField(_("金额(分)"))
    reason = models.CharField(_("事由"), max_length=200)
    created_at = models.DateTimeField(_("时间"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("经办人"),
    )
    entry = models.OneToOneField(
        "ledger.JournalEntry",
        on_delete=models.PROTECT,
        related_name="cash_movement",
        verbose_name=_("记账凭证"),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="cash_movement_positive")
        ]
        ordering = ["created_at", "pk"]
        verbose_name = _("现金存取")
        verbose_name_plural = _("现金存取")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount_fen}"
