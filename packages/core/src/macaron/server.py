"""Production serving under gunicorn, configured for a service rather than by hand."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


class MacaronGunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, path: Path, env: str | None, options: dict[str, Any]) -> None:
        self.path = path
        self.env = env
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from macaron.app import create_app

        return create_app(self.path, self.env)


def gunicorn_options(
    host: str, port: int, workers: int | None, threads: int = 4, timeout: int = 30, max_requests: int = 0
) -> dict[str, Any]:
    """Defaults that suit a JSON API: threads for I/O waits, quiet logs on stdout.

    Recycling is off by default: at 5,000 requests a worker was restarted every few seconds under load,
    each time with a cold worker, which cost most of gunicorn's throughput (issue 20)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers or multiprocessing.cpu_count() * 2 + 1,
        "worker_class": "gthread",
        "threads": threads,
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,
        "timeout": timeout,
        "graceful_timeout": 20,
        "keepalive": 5,
        "preload_app": True,  # a broken spec stops the master at once, and workers share the loaded app
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve_gunicorn(
    path: Path,
    env: str | None,
    host: str,
    port: int,
    workers: int | None,
    threads: int = 4,
    timeout: int = 30,
    max_requests: int = 0,
) -> None:
    MacaronGunicorn(path, env, gunicorn_options(host, port, workers, threads, timeout, max_requests)).run()


# -- development ------------------------------------------------------------------------


def watched_files(root: Path) -> list[str]:
    """What a spec-first service is edited in besides its Python modules: specs and config files."""
    apis = root / "apis"
    specs = [p for p in apis.rglob("*") if p.is_file()] if apis.is_dir() else []
    configs = [p for p in root.glob("*.yaml") if p.is_file()]
    return sorted(str(p) for p in [*specs, *configs])


def not_started(message: str) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """A WSGI app that answers every request with the start-up error, while the reloader waits for a fix."""
    body = json.dumps(
        {"status": 503, "error": "SERVICE_NOT_STARTED", "error_description": message, "error_id": "start-up"}, indent=2
    ).encode()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve_development(path: Path, env: str | None, host: str, port: int, debug: bool) -> None:
    """Flask's development server; with ``debug``, its debugger, and a reloader that also watches specs and config.

    Under the reloader a spec or config that breaks does not end the server: every
    request gets the start-up error as JSON until the file is fixed and saved.
    """
    from werkzeug.serving import run_simple

    from macaron.app import StartupError, create_app
    from macaron.config import ConfigError
    from macaron.spec import SpecError

    extra_files = watched_files(path.resolve()) if debug else None
    if debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        # The reloader's parent only watches files and restarts the child, which loads and serves the app.
        run_simple(host, port, not_started("starting"), use_reloader=True, extra_files=extra_files)
        return
    try:
        app: Any = create_app(path, env)
    except (SpecError, ConfigError, StartupError) as exc:
        if not debug:
            raise
        print(f"macaron serve: {exc}\nmacaron serve: the service did not start; fix it and save, the server reloads", file=sys.stderr, flush=True)
        app = not_started(str(exc))
    else:
        app.debug = debug
    run_simple(host, port, app, use_reloader=debug, use_debugger=debug, threaded=True, extra_files=extra_files)
