"""Forms of the counter: amounts typed in yuan, cleaned to integer fen."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from wuye.core.money import MoneyFormatError, parse_yuan
from wuye.counter.models import CashMovement, Shift
from wuye.estates.models import Community


def new_idempotency_key() -> str:
    """A fresh key for one payment attempt at the counter."""
    return f"counter:{uuid.uuid4().hex}"


class YuanField(forms.CharField):
    """A yuan amount (``"1,234.50"``) cleaned to integer fen; negative amounts refused."""

    def __init__(self, *args: Any, allow_zero: bool = True, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(*args, **kwargs)

    def widget_attrs(self, widget: Any) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.update({"inputmode": "decimal", "autocomplete": "off", "class": "money"})
        return attrs

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if text in (None, ""):
            return None
        if len(text) > 20:
            raise forms.ValidationError(_("请输入金额, 最多两位小数"))
        try:
            fen = parse_yuan(text)
        except MoneyFormatError as exc:
            raise forms.ValidationError(_("请输入金额, 最多两位小数")) from exc
        if fen < 0 or (fen == 0 and not self.allow_zero):
            raise forms.ValidationError(_("金额必须大于零") if fen == 0 else _("金额不能为负"))
        return fen


def known_counters(communities: QuerySet[Community]) -> list[str]:
    """Counter names of ``communities``: those with a card terminal first (a card payment goes
    to the terminal registered at the shift's counter), then those of earlier shifts."""
    from wuye.terminals.models import Terminal

    names = list(
        Terminal.objects.filter(community__in=communities)
        .order_by("counter_name")
        .values_list("counter_name", flat=True)
        .distinct()
    )
    for name in (
        Shift.objects.filter(community__in=communities)
        .order_by("-opened_at")
        .values_list("counter_name", flat=True)[:50]
    ):
        if name not in names:
            names.append(name)
    return names


class ShiftOpenForm(forms.Form):
    community = forms.ModelChoiceField(queryset=Community.objects.none(), label=_("小区"))
    counter_name = forms.CharField(
        label=_("收费台"),
        max_length=40,
        initial="1号窗口",
        help_text=_("刷卡收款推送到登记在此收费台的POS终端"),
        widget=forms.TextInput(attrs={"list": "known-counters", "autocomplete": "off"}),
    )
    opening_float = YuanField(label=_("备用金(元)"), initial="0.00")

    def __init__(self, *args: Any, communities: QuerySet[Community], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["community"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = communities
        if communities.count() == 1:
            field.initial = communities.first()
        self.known_counters = known_counters(communities)
        if self.known_counters:
            self.fields["counter_name"].initial = self.known_counters[0]


class ShiftCloseForm(forms.Form):
    counted = YuanField(label=_("实点现金(元)"))
    note = forms.CharField(label=_("差异说明"), max_length=200, required=False)


class CashMovementForm(forms.Form):
    kind = forms.ChoiceField(label=_("类型"), choices=CashMovement.Kind.choices)
    amount = YuanField(label=_("金额(元)"), allow_zero=False)
    reason = forms.CharField(label=_("事由"), max_length=200)


class PayForm(forms.Form):
    """Ticked bills, an optional amount (partial payment or prepayment) and how it is paid."""

    CHANNELS = [("cash", _("现金")), ("prepaid", _("预存余额/预付费卡"))]

    bills = forms.TypedMultipleChoiceField(coerce=int, required=False, label=_("账单"))
    amount = YuanField(label=_("本次收款(元)"), required=False, allow_zero=False)
    channel = forms.ChoiceField(
        label=_("支付方式"), choices=CHANNELS, initial="cash", widget=forms.RadioSelect
    )
    tendered = YuanField(label=_("实收现金(元)"), required=False)
    card_no = forms.CharField(label=_("预付费卡号"), max_length=32, required=False)
    password = forms.CharField(
        label=_("卡密码"), max_length=32, required=False, widget=forms.PasswordInput
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=80)

    def __init__(self, *args: Any, bill_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from wuye.counter.services import external_channels

        channel_field = self.fields["channel"]
        assert isinstance(channel_field, forms.ChoiceField)
        channel_field.choices = self.CHANNELS + [
            (code, _(c.name) if c.name else code) for code, c in external_channels().items()
        ]
        field = self.fields["bills"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(b, str(b)) for b in bill_ids]
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", new_idempotency_key())
            self.initial.setdefault("bills", bill_ids)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("bills") and not data.get("amount"):
            raise forms.ValidationError(_("请勾选账单或输入金额"))
        if data.get("channel") == "prepaid" and data.get("card_no") and not data.get("password"):
            self.add_error("password", _("刷卡支付需输入卡密码"))
        return data


def _shift_label(shift: Shift) -> str:
    return f"{shift.counter_name} · {shift.cashier}"


class RefundForm(forms.Form):
    amount = YuanField(label=_("退款金额(元)"), allow_zero=False)
    reason = forms.CharField(label=_("退款原因"), max_length=200)
    shift = forms.ModelChoiceField(
        queryset=Shift.objects.none(),
        label=_("付出现金的收费台"),
        required=False,
        help_text=_("现金退款从该班次的钱箱付出"),
    )

    def __init__(self, *args: Any, shifts: QuerySet[Shift], cash: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["shift"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = shifts
        field.required = cash
        field.label_from_instance = _shift_label  # type: ignore[method-assign,assignment]
        if shifts.count() == 1:
            field.initial = shifts.first()
        if not cash:
            field.widget = forms.HiddenInput()


class DayReportForm(forms.Form):
    community = forms.ModelChoiceField(queryset=Community.objects.none(), label=_("小区"))
    day = forms.DateField(
        label=_("日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(
        self, *args: Any, communities: QuerySet[Community], today: date, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["community"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = communities
        field.initial = communities.first()
        self.fields["day"].initial = today
