"""Background tasks of the billing app (run by django_tasks: in-process or ``wuye worker``)."""

from __future__ import annotations

import time
from datetime import date

from django.db import connection, connections
from django_tasks import task

from wuye.billing.engine.runs import billing_run_execute
from wuye.core.models import Job
from wuye.core.services import ProgressFn, job_finish, job_progress_reporter, job_start


class _SideProgress:
    """Write a job's progress on a second PostgreSQL connection, so watchers see it while the
    run's own transaction is still open. At most every 0.5 s, and always the last step."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.side = connections.create_connection("default")
        self.last = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.5:
            return
        self.last = now
        with self.side.cursor() as cur:
            cur.execute(
                "UPDATE core_job SET progress_done = %s, progress_total = %s, message = %s "
                "WHERE id = %s",
                [done, total, message[:200], self.job_id],
            )

    def close(self) -> None:
        self.side.close()


def _reporter(job_id: int) -> tuple[ProgressFn, _SideProgress | None]:
    # SQLite has one writer, held by the run: progress shows when the run commits.
    if connection.vendor == "postgresql":
        side = _SideProgress(job_id)
        return side, side
    return job_progress_reporter(job_id), None


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
    progress, side = _reporter(job.pk)
    try:
        run = billing_run_execute(
            community_id=int(p["community_id"]),
            period_start=date.fromisoformat(p["period_start"]),
            cycle_months=int(p.get("cycle_months", 1)),
            issued_on=date.fromisoformat(p["issued_on"]),
            fee_item_ids=p.get("fee_item_ids"),
            user_id=p.get("user_id") or job.created_by_id,
            progress=progress,
            job_id=job.pk,
        )
    except Exception as exc:
        job_finish(job, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if side is not None:
            side.close()
    result = {
        "run_id": run.pk,
        "bills_created": run.bills_created,
        "adjustments_created": run.adjustments_created,
        "unchanged": run.unchanged,
        "total_fen": run.total_fen,
    }
    job_finish(job, result=result)
    return result
