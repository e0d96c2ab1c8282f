"""Forms for the screens: bill filters, the statement date, launching a billing run."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from wuye.billing.models import FeeItem, Waiver
from wuye.core.money import MoneyFormatError, parse_yuan
from wuye.estates.models import Community
from wuye.web.selectors import BILL_STATUSES


class MonthField(forms.CharField):
    """A month typed as ``YYYY-MM``; cleans to the first day of that month."""

    widget = forms.TextInput(attrs={"type": "month", "placeholder": "2026-01"})

    def to_python(self, value: Any) -> date | None:  # type: ignore[override]
        text = (value or "").strip()
        if not text:
            return None
        try:
            year, month = (int(p) for p in text.split("-")[:2])
            return date(year, month, 1)
        except ValueError as exc:
            raise ValidationError(
                _("月份格式应为 YYYY-MM，收到: %(v)s"), params={"v": text}, code="month"
            ) from exc


STATUS_CHOICES = [
    ("", _("全部")),
    ("unpaid", _("未结清")),
    ("overdue", _("已逾期")),
    ("settled", _("已结清")),
]
assert {c for c, _label in STATUS_CHOICES if c} == set(BILL_STATUSES)


class BillFilterForm(forms.Form):
    community = forms.ModelChoiceField(
        label=_("小区"), queryset=Community.objects.none(), required=False, empty_label=_("全部")
    )
    period = MonthField(label=_("账期"), required=False)
    fee_item = forms.ModelChoiceField(
        label=_("收费项目"), queryset=FeeItem.objects.none(), required=False, empty_label=_("全部")
    )
    status = forms.ChoiceField(label=_("状态"), choices=STATUS_CHOICES, required=False)

    def __init__(
        self,
        *args: Any,
        communities: QuerySet[Community],
        fee_items: QuerySet[FeeItem],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["community"].queryset = communities  # type: ignore[attr-defined]
        self.fields["fee_item"].queryset = fee_items  # type: ignore[attr-defined]


class MonthForm(forms.Form):
    month = MonthField(label=_("月份"), required=False)


class StatementForm(forms.Form):
    as_of = forms.DateField(
        label=_("截至日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


CYCLE_CHOICES = [(1, _("月")), (3, _("季")), (6, _("半年")), (12, _("年"))]


class BillingRunForm(forms.Form):
    community = forms.ModelChoiceField(label=_("小区"), queryset=Community.objects.none())
    period = MonthField(label=_("账期开始月份"))
    cycle_months = forms.TypedChoiceField(
        label=_("计费周期"), choices=CYCLE_CHOICES, coerce=int, initial=1
    )
    issued_on = forms.DateField(
        label=_("出账日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args: Any, communities: QuerySet[Community], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["community"].queryset = communities  # type: ignore[attr-defined]


class WaiverRequestForm(forms.Form):
    target = forms.ChoiceField(label=_("减免对象"), choices=Waiver.Target.choices)
    amount = forms.CharField(
        label=_("减免金额(元)"),
        required=False,
        help_text=_("滞纳金全免可留空"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}),
    )
    reason = forms.CharField(label=_("原因"), max_length=200)

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        if not text:
            return None
        try:
            fen = parse_yuan(text)
        except MoneyFormatError as exc:
            raise ValidationError(
                _("金额应为元, 最多两位小数: %(v)s"), params={"v": text}, code="amount"
            ) from exc
        if fen <= 0:
            raise ValidationError(_("金额应大于零: %(v)s"), params={"v": text}, code="amount")
        return fen

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("target") == Waiver.Target.PRINCIPAL and data.get("amount") is None:
            self.add_error("amount", _("减免本金须填写金额"))
        return data


class WaiverDecisionForm(forms.Form):
    reason = forms.CharField(label=_("驳回原因"), max_length=200, required=False)
