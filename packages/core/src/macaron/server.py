"""Production serving: granian (the default) or gunicorn, configured for a service rather than by hand.

The app is built once, in the parent process, before any worker starts: a broken
service stops with the one-line error of ``macaron validate``, and workers are
forked with the app already loaded (a replaced worker starts warm, without
re-importing anything).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from macaron.startup import StartupError

SERVERS = ("granian", "gunicorn")
GRACEFUL_TIMEOUT = 20  # seconds in-flight requests get to finish after SIGTERM, under either server


class ServeConfigError(StartupError):
    """The ``serve`` section of macaron.yaml, or an option, is not usable; the message says which."""


@dataclass(frozen=True)
class ProductionSettings:
    """What a user tunes in production: ``serve --prod`` options, else the ``serve`` section of macaron.yaml."""

    server: str = "granian"
    workers: int | None = None  # granian: one per core; gunicorn: 2 x cores + 1
    threads: int | None = None  # granian: 1 (its Rust runtime does the I/O); gunicorn: 4
    timeout: int | None = None  # gunicorn only (30): its worker heartbeat, not a limit on a request; see docs/engine.md
    max_requests: int = 0  # gunicorn only: 0 never recycles a worker

    def resolved_workers(self) -> int:
        cores = multiprocessing.cpu_count()
        return self.workers or (cores if self.server == "granian" else cores * 2 + 1)

    def resolved_threads(self) -> int:
        return self.threads or (1 if self.server == "granian" else 4)

    def describe(self) -> str:
        threads = self.resolved_threads()
        return f"{self.server}, {self.resolved_workers()} worker(s) x {threads} thread{'s' if threads > 1 else ''}"


def production_settings(section: Mapping[str, Any], where: str, **options: Any) -> ProductionSettings:
    """Settings from the config's ``serve`` section, overridden by the options given on the command line (not None)."""
    if not isinstance(section, Mapping):
        raise ServeConfigError(f"{where}: 'serve' must be a mapping (server, workers, threads, timeout, max_requests)")
    fields: dict[str, type] = {"server": str, "workers": int, "threads": int, "timeout": int, "max_requests": int}
    values: dict[str, Any] = {}
    for key, value in dict[str, Any](section).items():
        kind = fields.get(key)
        if kind is None:
            raise ServeConfigError(f"{where}: unknown key 'serve.{key}' (known: {', '.join(fields)})")
        minimum = 0 if key == "max_requests" else 1
        if type(value) is not kind or (isinstance(value, int) and value < minimum):
            wanted = f"one of {', '.join(SERVERS)}" if kind is str else f"an integer >= {minimum}"
            raise ServeConfigError(f"{where}: 'serve.{key}' must be {wanted}, not {value!r}")
        values[key] = value
    values.update({key: value for key, value in options.items() if value is not None})
    settings = replace(ProductionSettings(), **values)
    if settings.server not in SERVERS:
        raise ServeConfigError(f"{where}: 'serve.server' must be one of {', '.join(SERVERS)}, not {settings.server!r}")
    if settings.server == "granian" and settings.max_requests:
        raise ServeConfigError("max_requests is gunicorn's: granian does not count requests (use --server gunicorn, or leave it 0)")
    if settings.server == "granian" and settings.timeout is not None:
        raise ServeConfigError("timeout is gunicorn's: granian has no worker timeout for WSGI (use --server gunicorn, or leave it out)")
    return settings


def serve_production(path: Path, env: str | None, host: str, port: int, **options: Any) -> None:
    """Build the app (errors propagate: the caller prints them in one line), then serve it under the chosen server."""
    from macaron.app import create_app, service_of

    app = create_app(path, env)
    service = service_of(app)
    config = service.config
    settings = production_settings(config.get("serve") or {}, config.where(), **options)
    print(f"macaron serve: {service.name} on http://{host}:{port} ({settings.describe()})", file=sys.stderr, flush=True)
    if settings.server == "granian":
        serve_granian(app, path, env, host, port, settings)
    else:
        serve_gunicorn(app, host, port, settings)


# -- granian ---------------------------------------------------------------------------

_preloaded: Any = None  # the app built by the parent; forked workers find it here


def _granian_app(target: str) -> Any:
    """Called in each granian worker: the parent's app when forked, else (spawned) built again from the folder."""
    if _preloaded is not None:
        return _preloaded
    from macaron.app import create_app

    return create_app(target, os.environ.get("MACARON_ENV") or None)


def granian_server(path: Path, host: str, port: int, settings: ProductionSettings) -> Any:
    try:
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels
    except ImportError as exc:  # an install older than the dependency: say what to do, in one line
        raise ServeConfigError(f"granian is not installed ({exc}): pip install granian, or serve with --server gunicorn") from exc

    return Granian(
        target=str(path),
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=settings.resolved_workers(),
        blocking_threads=settings.resolved_threads(),
        respawn_failed_workers=True,  # a worker that dies is replaced
        workers_kill_timeout=GRACEFUL_TIMEOUT,  # after SIGTERM, in-flight requests get this long to finish
        log_level=LogLevels.warning,
        log_access=False,
        websockets=False,
    )


def serve_granian(app: Any, path: Path, env: str | None, host: str, port: int, settings: ProductionSettings) -> None:
    global _preloaded
    _preloaded = app
    if env:
        os.environ["MACARON_ENV"] = env  # for workers started by spawn rather than fork
    granian_server(path, host, port, settings).serve(target_loader=_granian_app)


# -- gunicorn --------------------------------------------------------------------------


def gunicorn_options(host: str, port: int, settings: ProductionSettings) -> dict[str, Any]:
    """Defaults that suit a JSON API: threads for I/O waits, quiet logs on stdout.

    Recycling is off by default: at 5,000 requests a worker was restarted every few seconds under load,
    each time with a cold worker, which cost most of gunicorn's throughput (issue 20)."""
    return {
        "bind": f"{host}:{port}",
        "workers": settings.resolved_workers(),
        "worker_class": "gthread",
        "threads": settings.resolved_threads(),
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests // 10,
        "timeout": settings.timeout or 30,  # the heartbeat of a worker's main loop: a slow request in a thread is not stopped
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "preload_app": True,  # workers are forked with the app the parent built
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve_gunicorn(app: Any, host: str, port: int, settings: ProductionSettings) -> None:
    from gunicorn.app.base import BaseApplication

    class MacaronGunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(host, port, settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    MacaronGunicorn().run()


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

    from macaron.app import create_app

    extra_files = watched_files(path.resolve()) if debug else None
    if debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        # The reloader's parent only watches files and restarts the child, which loads and serves the app.
        run_simple(host, port, not_started("starting"), use_reloader=True, extra_files=extra_files)
        return
    try:
        app: Any = create_app(path, env)
    except StartupError as exc:
        if not debug:
            raise
        print(f"macaron serve: {exc}\nmacaron serve: the service did not start; fix it and save, the server reloads", file=sys.stderr, flush=True)
        app = not_started(str(exc))
    else:
        app.debug = debug
    run_simple(host, port, app, use_reloader=debug, use_debugger=debug, threaded=True, extra_files=extra_files)
