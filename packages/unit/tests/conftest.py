"""Fixtures of macaron-unit's tests: gunicorn serving the fixture services, started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unit_support import HELLOWORLD, SAMPLE

from macaron_unit import ServiceServer


@pytest.fixture(scope="session")
def helloworld_server() -> Iterator[ServiceServer]:
    with ServiceServer(HELLOWORLD) as server:
        yield server


@pytest.fixture(scope="session")
def sample_server() -> Iterator[ServiceServer]:
    with ServiceServer(SAMPLE) as server:
        yield server


# The fixture services' own tests (one fails on purpose) run only through the tests above.
collect_ignore = ["services"]
