"""Writes for jobs and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from wuye.core.models import AuditEvent, Job

ProgressFn = Callable[[int, int, str], None]


def audit_record(
    *, actor: Any, action: str, obj: Any, company: Any = None, detail: dict | None = None
) -> AuditEvent:
    """Append an audit event for ``obj``."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        company=company,
        action=action,
        object_type=type(obj)._meta.label_lower,
        object_id=str(obj.pk),
        detail=detail or {},
    )


def job_progress_reporter(job_id: int, *, every: int = 1) -> ProgressFn:
    """Return a callback that records progress on a job outside the caller's transaction.

    Progress is written on its own connection-level autocommit when the caller is inside
    ``atomic`` on PostgreSQL, so watchers see it; on SQLite (one writer) updates are throttled.
    """
    state = {"last": -1}

    def report(done: int, total: int, message: str = "") -> None:
        if done != total and state["last"] >= 0 and done - state["last"] < every:
            return
        state["last"] = done
        if transaction.get_connection().in_atomic_block:
            return  # visible only on commit anyway; avoid writing inside the caller's work
        Job.objects.filter(pk=job_id).update(
            progress_done=done, progress_total=total, message=message
        )

    return report


def job_start(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())


def job_finish(job: Job, *, result: dict | None = None, error: str = "") -> None:
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED if error else Job.Status.SUCCEEDED,
        finished_at=timezone.now(),
        result=result or {},
        message=error or "",
    )
