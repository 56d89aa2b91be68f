"""Fixtures of the macaron-async tests: a private redis-server per test module, and a clean task runtime."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from async_support import redis_server

from macaron_async.registry import _tasks


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield port


@pytest.fixture(autouse=True, scope="module")
def forget_imported_services() -> Iterator[None]:
    """Services written by a test module are imported by name: drop them afterwards, with their sys.path entry and tasks.

    The task registry is the process's; a task left from another module's service
    would count among the next service's periodic tasks.
    """
    modules, path, tasks = set(sys.modules), list(sys.path), dict(_tasks)
    yield
    for name in set(sys.modules) - modules:
        if name.startswith("asvc"):
            del sys.modules[name]
    sys.path[:] = path
    _tasks.clear()
    _tasks.update(tasks)
