"""``MacaronTestCase``: black-box tests written as ``unittest.TestCase`` classes, run by pytest.

PyMacaron's tests were ``unittest`` classes (``PyMacaronTestCase``); ``macaron migrate`` keeps
them as classes on this base, so ``setUp``, helper methods, ``self.assertEqual`` and the
attributes PyMacaron set (``host``, ``port``, ``base_url``, ``token``) keep working. The
fixtures of the pytest plugin reach the class through one autouse fixture, which pytest runs
before ``setUp``: it needs pytest to run the tests (``python -m unittest`` does not resolve
fixtures).
"""

from __future__ import annotations

import unittest
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from macaron_unit.client import Client


class MacaronTestCase(unittest.TestCase):
    """``self.client`` is ``macaron_client``; ``self.base_url`` its URL, ``self.host``/``self.port`` its parts.

    ``self.token`` is ``macaron_token``, issued on first use (so a class that never reads it
    does not need a ``jwt_secret``), and can be assigned.
    """

    client: Client
    base_url: str
    host: str
    port: int
    _macaron_request: pytest.FixtureRequest
    _token: str | None = None

    @pytest.fixture(autouse=True)
    def _macaron_fixtures(self, request: pytest.FixtureRequest, macaron_client: Client, macaron_url: str) -> None:
        self._macaron_request = request
        self.client = macaron_client
        self.base_url = macaron_url
        parts = urlsplit(macaron_url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = str(self._macaron_request.getfixturevalue("macaron_token"))
        return self._token

    @token.setter
    def token(self, value: str) -> None:
        self._token = value
