"""Forms of the terminal-management screens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from wuye.estates.models import Community
from wuye.terminals.models import Terminal
from wuye.terminals.services import ENTRY_MODES


class FleetFilterForm(forms.Form):
    community = forms.ModelChoiceField(
        queryset=Community.objects.none(),
        required=False,
        label=_("小区"),
        empty_label=_("全部小区"),
    )
    status = forms.ChoiceField(
        required=False,
        label=_("在线状态"),
        choices=[("", _("全部")), ("online", _("在线")), ("offline", _("离线"))],
    )
    unsettled = forms.BooleanField(required=False, label=_("只看未结算批次"))

    def __init__(self, *args: Any, communities: QuerySet[Community], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["community"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = communities


class RegisterForm(forms.Form):
    community = forms.ModelChoiceField(queryset=Community.objects.none(), label=_("小区"))
    counter_name = forms.CharField(
        label=_("收费台"), max_length=40, help_text=_("与开班时填写的收费台名称一致")
    )
    serial_no = forms.CharField(label=_("序列号"), max_length=40)
    model = forms.CharField(label=_("型号"), max_length=60, required=False)
    kind = forms.ChoiceField(label=_("类型"), choices=Terminal.Kind.choices)
    tid = forms.RegexField(
        label=_("终端号"), regex=r"^\d{8}$", error_messages={"invalid": _("8位数字")}
    )
    mid = forms.RegexField(
        label=_("商户号"), regex=r"^\d{15}$", error_messages={"invalid": _("15位数字")}
    )
    location = forms.CharField(label=_("布放地址"), max_length=200, required=False)
    ip_address = forms.GenericIPAddressField(label=_("IP地址"), required=False)
    network_cert_no = forms.CharField(label=_("入网许可证号"), max_length=40, required=False)

    def __init__(self, *args: Any, communities: QuerySet[Community], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["community"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = communities


class ParamsForm(forms.Form):
    timeout_s = forms.IntegerField(label=_("交易超时(秒)"), min_value=5, max_value=120)
    receipt_header = forms.CharField(label=_("签购单抬头"), max_length=60)
    entry_modes = forms.MultipleChoiceField(
        label=_("允许的读卡方式"),
        choices=[(m, m) for m in ENTRY_MODES],
        widget=forms.CheckboxSelectMultiple,
    )
    operators = forms.CharField(label=_("操作员号(逗号分隔)"), max_length=200)
    training = forms.BooleanField(label=_("培训模式"), required=False)


class ReleaseForm(forms.Form):
    version = forms.CharField(label=_("版本"), max_length=20)
    url = forms.URLField(label=_("下载地址"), max_length=300, assume_scheme="https")
    sha256 = forms.CharField(label=_("SHA-256"), max_length=64)
    share_pct = forms.IntegerField(
        label=_("首批推送比例(%)"), min_value=1, max_value=100, initial=10
    )
    notes = forms.CharField(label=_("说明"), max_length=200, required=False)


class ShareForm(forms.Form):
    share_pct = forms.IntegerField(label=_("推送比例(%)"), min_value=1, max_value=100)
