"""Handlers of the reports API (apis/reports.yaml); both require a JWT."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult

from macaron import apis
from macaron.auth import get_userid
from macaron.context import get_request_id
from macaron.errors import NotFound
from macaron_async import celery_app
from reports.tasks import build_report


def request_report(request: Any) -> Any:
    result = build_report(request)  # called in a request: queued, returns at once
    return apis.reports.Ticket(task_id=result.id, request_id=get_request_id()), 202


# Celery's task states, as the spec names them (a task id Celery never saw is PENDING too).
STATUS = {"SUCCESS": "SUCCESS", "RETRY": "RETRY", "FAILURE": "FAILURE", "REVOKED": "FAILURE", "REJECTED": "FAILURE"}


def get_report(task_id: str) -> Any:
    result = AsyncResult(task_id, app=celery_app())
    status = STATUS.get(result.state, "PENDING")
    if status != "SUCCESS":
        return apis.reports.ReportStatus(task_id=task_id, status=status)
    report = apis.reports.Report.from_json(result.result)
    if report.built_for != get_userid():
        raise NotFound(f"no report {task_id} for this user")
    return apis.reports.ReportStatus(task_id=task_id, status=status, report=report)
