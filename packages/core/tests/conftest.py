"""Fixtures of the core's tests: small services written to a temporary folder (see tests/support/service_maker.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service_maker import ServiceMaker


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceMaker]:
    maker = ServiceMaker(tmp_path)
    yield maker
    maker.cleanup()


