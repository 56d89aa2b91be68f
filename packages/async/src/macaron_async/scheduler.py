"""The Celery beat scheduler of ``macaron beat`` (imported by Celery from its name, so by beat processes only)."""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry

from macaron.context import CallContext
from macaron_async import beat
from macaron_async.beat import BeatLockHeld
from macaron_async.schedule import request_id

log = logging.getLogger("macaron.async")


class MacaronScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's file-backed scheduler, which holds the service's beat lock and sends each run with a call context.

    A run's context has no user and the request id ``beat-<entry>-<UTC time>``,
    so its log lines and crash reports say which scheduled run they belong to.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        guard = beat._guard
        if guard is not None:
            try:
                if not guard.renew():
                    return min(1.0, float(self.max_interval))
            except BeatLockHeld as held:
                log.error("beat: another beat took the lock %s: %s; this beat stops so that no task runs twice", held.key, held.holder)
                raise SystemExit(1) from None
        interval: float = super().tick(*args, **kwargs)
        return interval

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        entry = self.reserve(entry) if advance else entry
        context = CallContext(request_id=request_id(entry.name)).to_dict()
        # A copy with the context appended: the stored entry keeps the fixed arguments only.
        sending = entry.__class__(**dict(entry, args=[*entry.args, context]))
        return super().apply_async(sending, producer=producer, advance=False, **kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if beat._guard is not None:
                beat._guard.release()
