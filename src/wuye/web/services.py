"""Writes started from the screens. Each view makes one call here."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from wuye.core.models import Job
from wuye.core.services import audit_record
from wuye.estates.models import Community

CYCLES = (1, 3, 6, 12)


class BillingUnavailable(RuntimeError):
    """The billing engine (``wuye.billing.tasks``) is not installed."""


def billing_run_launch(
    *,
    community: Community,
    period_start: date,
    cycle_months: int,
    issued_on: date,
    user: Any,
) -> Job:
    """Queue a billing run for ``community`` as a background job and return the job.

    The task is enqueued when the transaction commits, so a worker never sees a job that is
    not there yet. Raises ValidationError if the period does not start on the 1st, the cycle
    is not 1/3/6/12 months, or a run for the same community and period is already queued or
    running; BillingUnavailable if the billing engine is missing. Nothing is written then.
    """
    errors: dict[str, str] = {}
    if period_start.day != 1:
        errors["period"] = f"账期应从每月1日开始: {period_start}"
    if cycle_months not in CYCLES:
        errors["cycle_months"] = f"计费周期应为 1、3、6 或 12 个月: {cycle_months}"
    if errors:
        raise ValidationError(errors)
    try:
        from wuye.billing.tasks import billing_run_task
    except ImportError as exc:
        raise BillingUnavailable("wuye.billing.tasks is not installed") from exc

    params = {
        "community_id": community.pk,
        "period_start": period_start.isoformat(),
        "cycle_months": cycle_months,
        "issued_on": issued_on.isoformat(),
    }
    with transaction.atomic():
        busy = Job.objects.filter(
            kind="billing_run",
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            params__community_id=community.pk,
            params__period_start=params["period_start"],
        ).exists()
        if busy:
            raise ValidationError(
                {"period": f"{community.name} {period_start:%Y-%m} 已有出账任务在排队或进行中"}
            )
        job = Job.objects.create(
            kind="billing_run",
            title=f"出账 {community.name} {period_start:%Y-%m} ({cycle_months}个月)",
            company_id=community.company_id,
            params=params,
            created_by=user if getattr(user, "pk", None) else None,
        )
        audit_record(
            actor=user,
            action="billing_run.launch",
            obj=job,
            company=community.company,
            detail=params,
        )
        job_id = job.pk
        transaction.on_commit(lambda: billing_run_task.enqueue(job_id))
    job.refresh_from_db()
    return job
