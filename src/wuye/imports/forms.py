"""The upload form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from wuye.estates.models import Company
from wuye.imports.specs import SPECS

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("数据类型"))
    company = forms.ModelChoiceField(queryset=Company.objects.none(), label=_("物业公司"))
    file = forms.FileField(label=_("Excel 文件(.xlsx)"))
    dry_run = forms.BooleanField(
        label=_("试导入(只校验, 不写入)"), required=False, initial=True
    )

    def __init__(self, *args: Any, companies: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies  # type: ignore[attr-defined]
        english = (translation.get_language() or "").startswith("en")
        self.fields["kind"].choices = [  # type: ignore[attr-defined]
            (k, s.title_en if english else s.title_zh) for k, s in SPECS.items()
        ]
        if companies.count() == 1:
            self.fields["company"].initial = companies.first()

    def clean_file(self) -> Any:
        f = self.cleaned_data["file"]
        if not f.name.lower().endswith(".xlsx"):
            raise forms.ValidationError(_("请上传 .xlsx 文件 (Excel 2007 及以后的格式)"))
        if f.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("文件超过 20 MB"))
        return f
