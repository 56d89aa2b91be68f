"""macaron-unit: black-box tests for macaron services.

* :class:`Client` and :class:`Reply`: HTTP calls with assertions (JSON, ``{}``, dict
  contents, Error status and code, redirects), connect retries while a server boots;
* :func:`generate_test_token`: a JWT signed with the service's own settings;
* :class:`ServiceServer`: a service under gunicorn on a free 127.0.0.1 port;
* :class:`MacaronTestCase`: the fixtures as attributes of ``unittest.TestCase`` classes (run by pytest);
* a pytest plugin with the fixtures ``macaron_url``, ``macaron_client``,
  ``macaron_auth_client``, ``macaron_token`` and ``macaron_service``;
* the ``macaron test`` command (acceptance and contract tests).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from macaron_unit.auth import generate_test_token
    from macaron_unit.client import Client, Reply, ServerUnreachable
    from macaron_unit.server import ServerStartError, ServiceServer
    from macaron_unit.testcase import MacaronTestCase

__all__ = ["Client", "MacaronTestCase", "Reply", "ServerStartError", "ServerUnreachable", "ServiceServer", "generate_test_token"]

# Imported on first use: pytest imports this package in every session (for the plugin),
# and a session that uses none of it should not pay for requests or anything else.
_WHERE = {
    "Client": "macaron_unit.client",
    "Reply": "macaron_unit.client",
    "ServerUnreachable": "macaron_unit.client",
    "ServerStartError": "macaron_unit.server",
    "ServiceServer": "macaron_unit.server",
    "generate_test_token": "macaron_unit.auth",
    "MacaronTestCase": "macaron_unit.testcase",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'macaron_unit' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
