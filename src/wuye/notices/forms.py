"""Forms of the notices staff page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from wuye.estates.models import Building, Community, Unit

SIZE_CHOICES = [("A4", "A4"), ("A5", "A5")]


class BatchForm(forms.Form):
    community = forms.ModelChoiceField(queryset=Community.objects.none(), label=_("小区"))
    building = forms.ModelChoiceField(
        queryset=Building.objects.none(),
        required=False,
        label=_("楼栋"),
        empty_label=_("全部楼栋"),
    )
    as_of = forms.DateField(label=_("截止日期"), widget=forms.DateInput(attrs={"type": "date"}))
    size = forms.ChoiceField(choices=SIZE_CHOICES, label=_("纸张"))

    def __init__(self, *args: Any, communities: QuerySet[Community], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["community"].queryset = communities  # type: ignore[attr-defined]
        self.fields["building"].queryset = Building.objects.filter(  # type: ignore[attr-defined]
            community__in=communities
        ).order_by("community_id", "code")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        b, c = data.get("building"), data.get("community")
        if b is not None and c is not None and b.community_id != c.pk:
            self.add_error("building", _("该楼栋不属于所选小区"))
        return data


class HouseholdForm(forms.Form):
    community = forms.ModelChoiceField(queryset=Community.objects.none(), label=_("小区"))
    label = forms.CharField(label=_("房屋编号"), max_length=60)
    as_of = forms.DateField(label=_("截止日期"), widget=forms.DateInput(attrs={"type": "date"}))
    size = forms.ChoiceField(choices=SIZE_CHOICES, label=_("纸张"))

    def __init__(self, *args: Any, communities: QuerySet[Community], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fields["community"].queryset = communities  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        c, label = data.get("community"), (data.get("label") or "").strip()
        if c is not None and label:
            unit = Unit.objects.filter(community=c, label=label).first()
            if unit is None:
                self.add_error("label", _("该小区没有房屋 %(label)s") % {"label": label})
            else:
                data["unit"] = unit
        return data
