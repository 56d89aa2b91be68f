"""The slow part, run by `macaron worker`: it sees the caller's user id and request id."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

from macaron import apis
from macaron.auth import get_userid
from macaron.context import get_request_id
from macaron_async import asynctask

log = logging.getLogger(__name__)


@asynctask(retries=3, retry_for=(ConnectionError,))
def build_report(request: Any) -> Any:
    # request arrives as an apis.reports.ReportRequest model, rebuilt by the worker.
    log.info("building %r, %d page(s)", request.title, request.pages)
    time.sleep(0.05 * request.pages)  # the slow work
    return apis.reports.Report(
        title=request.title,
        pages=request.pages,
        built_for=get_userid(),
        request_id=get_request_id(),
        built_at=datetime.now(timezone.utc),
    )
