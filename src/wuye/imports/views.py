"""Thin views: upload a spreadsheet, watch its import, download templates and exports."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from wuye.accounts.selectors import AccessDenied
from wuye.core.models import Job
from wuye.estates.models import Company
from wuye.imports.forms import UploadForm
from wuye.imports.models import ImportBatch
from wuye.imports.selectors import (
    batch_for_user,
    batches_for_user,
    companies_for_export,
    companies_for_import,
)
from wuye.imports.services import (
    batch_create,
    batch_error_report,
    export_file,
    template_build,
)
from wuye.imports.specs import EXPORT_KINDS, KIND_LABELS, SPECS
from wuye.imports.tasks import import_batch_task

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _english() -> bool:
    return (translation.get_language() or "").startswith("en")


def _label(kind: str) -> str:
    zh, en = KIND_LABELS[kind]
    return en if _english() else zh


def _index_context(request: HttpRequest, form: UploadForm) -> dict[str, Any]:
    return {
        "form": form,
        "import_kinds": [(k, _label(k)) for k in SPECS],
        "export_kinds": [(k, _label(k)) for k in EXPORT_KINDS],
        "export_companies": companies_for_export(user=request.user),
        "batches": [
            (b, _label(b.kind) if b.kind in KIND_LABELS else b.kind)
            for b in batches_for_user(user=request.user)
        ],
    }


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form = UploadForm(companies=companies_for_import(user=request.user))
    return render(request, "imports/index.html", _index_context(request, form))


@login_required
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(
        request.POST, request.FILES, companies=companies_for_import(user=request.user)
    )
    if not form.is_valid():
        return render(request, "imports/index.html", _index_context(request, form), status=400)
    d = form.cleaned_data
    try:
        batch = batch_create(
            user=request.user, kind=d["kind"], company_id=d["company"].pk,
            file_name=d["file"].name, content=d["file"].read(), dry_run=d["dry_run"],
        )
    except AccessDenied:
        return HttpResponseForbidden(_("只有该公司的管理员可以导入数据"))
    transaction.on_commit(lambda: import_batch_task.enqueue(batch.pk))
    return redirect("imports:batch", pk=batch.pk)


@login_required
@require_GET
def batch(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        found = batch_for_user(user=request.user, batch_id=pk)
    except ImportBatch.DoesNotExist as exc:
        raise Http404 from exc
    except AccessDenied:
        return HttpResponseForbidden(_("无权查看该导入批次"))
    running = found.status in (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING)
    job = Job.objects.filter(pk=found.job_id).first() if found.job_id else None
    english = _english()
    errors = [
        {
            "row": e.get("row") or "",
            "header": (e.get("header_en") or e.get("header", "")) if english
            else e.get("header", ""),
            "message": e.get("message_en") if english else e.get("message"),
        }
        for e in found.errors[:500]
    ]
    ctx = {
        "batch": found, "job": job, "running": running, "errors": errors,
        "more_errors": max(0, found.error_count - len(errors)), "kind_label": _label(found.kind),
    }
    partial = request.headers.get("HX-Request") == "true"
    return render(request, "imports/_batch_status.html" if partial else "imports/batch.html", ctx)


@login_required
@require_GET
def batch_errors(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        found = batch_for_user(user=request.user, batch_id=pk)
    except ImportBatch.DoesNotExist as exc:
        raise Http404 from exc
    except AccessDenied:
        return HttpResponseForbidden(_("无权查看该导入批次"))
    try:
        content = batch_error_report(batch=found)
    except FileNotFoundError as exc:
        raise Http404 from exc
    stem = found.file_name.rsplit(".", 1)[0]
    return _xlsx(content, f"{stem}-错误报告.xlsx")


@login_required
@require_GET
def template(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in SPECS:
        raise Http404
    return _xlsx(template_build(kind=kind), f"{KIND_LABELS[kind][0]}导入模板.xlsx")


@login_required
@require_GET
def export(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in EXPORT_KINDS:
        raise Http404
    company_id = request.GET.get("company", "")
    company = Company.objects.filter(pk=company_id).first() if company_id.isdigit() else None
    if company is None:
        raise Http404
    try:
        content = export_file(user=request.user, kind=kind, company=company)
    except AccessDenied:
        return HttpResponseForbidden(_("无权导出该公司的数据"))
    today = timezone.localdate().strftime("%Y%m%d")
    return _xlsx(content, f"{KIND_LABELS[kind][0]}-{company}-{today}.xlsx")


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=XLSX)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
