"""Fixtures of the request-id, logging, reporting and CORS tests; a module loads them with ``pytest_plugins = ["ops_fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ops_support import Sink, logging_restored, report_sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    with report_sink() as made:
        yield made


@pytest.fixture
def clean_logging() -> Iterator[None]:
    with logging_restored():
        yield
