"""Background tasks of the billing app (run by django_tasks: in-process or ``wuye worker``)."""

from __future__ import annotations

from datetime import date

from django_tasks import task

from wuye.billing.engine.runs import billing_run_execute
from wuye.core.models import Job
from wuye.core.services import job_finish, job_progress_reporter, job_start


@task()
def billing_run_task(job_id: int) -> dict:
    """Run the billing run described by a Job's params and record the outcome on the job.

    Params: ``community_id``, ``period_start`` and ``issued_on`` (ISO dates), optional
    ``cycle_months`` (default 1), ``fee_item_ids``, ``user_id``. A failure marks the job failed
    with the error and re-raises.
    """
    job = Job.objects.get(pk=job_id)
    job_start(job)
    p = job.params
    try:
        run = billing_run_execute(
            community_id=int(p["community_id"]),
            period_start=date.fromisoformat(p["period_start"]),
            cycle_months=int(p.get("cycle_months", 1)),
            issued_on=date.fromisoformat(p["issued_on"]),
            fee_item_ids=p.get("fee_item_ids"),
            user_id=p.get("user_id") or job.created_by_id,
            progress=job_progress_reporter(job.pk),
            job_id=job.pk,
        )
    except Exception as exc:
        job_finish(job, error=f"{type(exc).__name__}: {exc}")
        raise
    result = {
        "run_id": run.pk,
        "bills_created": run.bills_created,
        "adjustments_created": run.adjustments_created,
        "unchanged": run.unchanged,
        "total_fen": run.total_fen,
    }
    job_finish(job, result=result)
    return result
