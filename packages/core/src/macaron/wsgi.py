"""WSGI entry point: ``gunicorn macaron.wsgi:app`` serves the service in ``MACARON_SERVICE`` (default: the current folder).

``MACARON_ENV`` picks the config overlay. Any WSGI server works the same way; or
call the factory yourself: ``gunicorn "macaron:create_app('path/to/service')"``.
"""

from __future__ import annotations

import os

from macaron.app import create_app

app = create_app(os.environ.get("MACARON_SERVICE", "."), os.environ.get("MACARON_ENV") or None)
application = app
