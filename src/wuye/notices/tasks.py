"""Background task of the notices app: a community's (or building's) notices as one PDF."""

from __future__ import annotations

from datetime import date

from django.core.files.base import ContentFile
from django.utils import timezone
from django_tasks import task

from wuye.core.models import Job
from wuye.core.services import job_finish, job_progress_reporter, job_start
from wuye.estates.models import Unit
from wuye.notices.pdf import notices_pdf
from wuye.notices.selectors import NoticePage, notice_page
from wuye.notices.services import NoticeNothingDue, notice_create, notice_pay_url


def notices_batch_run(job: Job) -> dict:
    """Make the notices a Job's params describe and attach their PDF; return the result.

    Params: ``community_id``, optional ``building_id``, ``as_of`` (ISO date), ``size``.
    """
    p = job.params
    as_of = date.fromisoformat(p["as_of"])
    units = Unit.objects.filter(community_id=p["community_id"]).select_related("community__company")
    if p.get("building_id"):
        units = units.filter(building_id=p["building_id"])
    unit_list = list(units.order_by("label", "pk"))
    report = job_progress_reporter(job.pk, every=max(1, len(unit_list) // 50))
    pages: list[NoticePage] = []
    total_fen = 0
    for i, unit in enumerate(unit_list, start=1):
        try:
            notice = notice_create(
                unit=unit, as_of=as_of, user=job.created_by, job_id=job.pk, now=timezone.now()
            )
        except NoticeNothingDue:
            pass
        else:
            pages.append(notice_page(notice, pay_url=notice_pay_url(notice)))
            total_fen += notice.total_fen
        report(i, len(unit_list), f"{unit.label}")
    Job.objects.filter(pk=job.pk).update(  # the last step always shows, even inside atomic
        progress_done=len(unit_list), progress_total=len(unit_list)
    )
    pdf = notices_pdf(pages, size=p.get("size", "A4"))
    job.result_file.save(f"notices-{job.pk}-{as_of:%Y%m%d}.pdf", ContentFile(pdf), save=False)
    Job.objects.filter(pk=job.pk).update(result_file=job.result_file.name)
    return {"households": len(unit_list), "notices": len(pages), "total_fen": total_fen}


@task()
def notices_batch_task(job_id: int) -> dict:
    """Run ``notices_batch_run`` for a Job and record the outcome; a failure marks it failed."""
    job = Job.objects.get(pk=job_id)
    job_start(job)
    try:
        result = notices_batch_run(job)
    except Exception as exc:
        job_finish(job, error=str(exc)[:500])
        raise
    job_finish(job, result=result)
    return result
