"""Background tasks of the imports app (run by django_tasks: in-process or ``wuye worker``)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from wuye.imports.services import batch_run


@task()
def import_batch_task(batch_id: int) -> dict:
    """Run a queued import batch; its job records progress and the outcome."""
    report = batch_run(batch_id=batch_id, as_of=timezone.localdate())
    if report is None:
        return {"batch_id": batch_id, "skipped": True}
    return {"batch_id": batch_id, "ok": report.ok, "summary": report.summary()}
