"""Forms of the finance pages: the day, uploads, running a day, the queue's filters, actions."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from wuye.reconciliation.models import Category, Channel, ReconException, SourceFile
from wuye.reconciliation.resolution import Action, SurplusTo

CHASING = "chasing"
FOLLOW_UP_DUE = "follow_up_due"
"""Queue filters beside the states: open exceptions being chased, and those whose follow-up
date has come."""

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""A day's file for a large merchant is tens of MB; refuse anything absurd before reading it."""


class DayForm(forms.Form):
    date = forms.DateField(
        label=_("结算日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; ``cleaned_data`` holds the list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            if not data:
                return [single(None, initial)]  # raises "required"
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    uploads = MultipleFileField(
        label=_("对账文件"),
        help_text=_("收单结算文件、微信/支付宝账单、银行流水(CSV 或 MT940), 可多选; 格式自动识别"),
    )
    kind = forms.ChoiceField(
        label=_("类型"),
        required=False,
        choices=[("", _("自动识别")), *SourceFile.Kind.choices],
    )
    account_no = forms.CharField(
        label=_("银行账号"),
        required=False,
        max_length=40,
        help_text=_("银行流水 CSV 没有账号列时填写"),
    )


class RunForm(forms.Form):
    date = forms.DateField(
        label=_("结算日期"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    channel = forms.ChoiceField(
        label=_("渠道"), required=False, choices=[("", _("全部渠道")), *Channel.choices]
    )


class QueueFilter(forms.Form):
    channel = forms.ChoiceField(
        label=_("渠道"), required=False, choices=[("", _("全部")), *Channel.choices]
    )
    category = forms.ChoiceField(
        label=_("差异类型"), required=False, choices=[("", _("全部")), *Category.choices]
    )
    state = forms.ChoiceField(
        label=_("状态"),
        required=False,
        choices=[
            ("", _("全部")),
            *ReconException.State.choices,
            (CHASING, _("催查中")),
            (FOLLOW_UP_DUE, _("催查到期待跟进")),
        ],
    )
    owner = forms.ChoiceField(label=_("负责人"), required=False)
    chaser = forms.ChoiceField(label=_("催查人"), required=False)
    date_from = forms.DateField(
        label=_("结算日期从"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=_("至"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, owners: list[tuple[str, str]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ChoiceField)
        owner.choices = [
            ("", _("全部")),
            ("me", _("我负责的")),
            ("none", _("未指派")),
            *(owners or []),
        ]
        chaser = self.fields["chaser"]
        assert isinstance(chaser, forms.ChoiceField)
        chaser.choices = [("", _("全部")), ("me", _("我在催查的")), *(owners or [])]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start: date | None = data.get("date_from")
        end: date | None = data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("结束日期不能早于开始日期"))
        return data


class ActionForm(forms.Form):
    action = forms.ChoiceField(choices=Action.choices)
    note = forms.CharField(
        label=_("说明"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    community = forms.ChoiceField(label=_("小区"), required=False)
    room = forms.CharField(label=_("房屋编号"), required=False, max_length=60)
    surplus_to = forms.ChoiceField(label=_("多收款去向"), required=False, choices=SurplusTo.choices)
    follow_up_on = forms.DateField(
        label=_("跟进日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, communities: list[tuple[str, str]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        community = self.fields["community"]
        assert isinstance(community, forms.ChoiceField)
        community.choices = [("", "—"), *(communities or [])]


class AssignForm(forms.Form):
    owner = forms.IntegerField(label=_("负责人"), required=False, min_value=1)
    note = forms.CharField(label=_("说明"), required=False, max_length=500)


class UndoForm(forms.Form):
    reason = forms.CharField(label=_("撤销原因"), max_length=200)
