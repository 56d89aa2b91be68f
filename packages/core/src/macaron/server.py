"""Production serving under gunicorn, configured for a service rather than by hand."""

from __future__ import annotations

import multiprocessing
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


def gunicorn_options(host: str, port: int, workers: int | None) -> dict[str, Any]:
    """Defaults that suit a JSON API: threads for I/O waits, recycled workers, quiet logs on stdout."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers or multiprocessing.cpu_count() * 2 + 1,
        "worker_class": "gthread",
        "threads": 4,
        "max_requests": 5000,
        "max_requests_jitter": 500,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        "preload_app": True,  # a broken spec stops the master at once, and workers share the loaded app
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve_gunicorn(path: Path, env: str | None, host: str, port: int, workers: int | None) -> None:
    MacaronGunicorn(path, env, gunicorn_options(host, port, workers)).run()
