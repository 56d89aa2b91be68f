"""Fixtures: DynamoDB servers for the session, and services whose persisted models use them.

``endpoint`` runs a test against moto's server and again against AWS DynamoDB
Local (skipped, with the reason, where Java or the emulator is missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from ddb_support import AWS_TEST_ENV, AWS_UNSET, Services, Unavailable, dynamodb_local, moto_server, truncate

import macaron_dynamodb
from macaron.models import ApiModels


@pytest.fixture(scope="session", autouse=True)
def aws_test_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in [*AWS_TEST_ENV, *AWS_UNSET]}
    os.environ.update(AWS_TEST_ENV)
    for name in AWS_UNSET:
        os.environ.pop(name, None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ServerPool:
    """DynamoDB servers started on first use, stopped at the end of the session."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.started: dict[str, str | Unavailable] = {}

    def endpoint(self, name: str) -> str:
        if name not in self.started:
            factory = moto_server if name == "moto" else dynamodb_local
            try:
                self.started[name] = self.stack.enter_context(factory())
            except Unavailable as exc:
                self.started[name] = exc
        value = self.started[name]
        if isinstance(value, Unavailable):
            pytest.skip(f"DynamoDB Local fidelity run skipped: {value}")
        return value


@pytest.fixture(scope="session")
def servers() -> Iterator[ServerPool]:
    with ExitStack() as stack:
        yield ServerPool(stack)


@pytest.fixture
def moto(servers: ServerPool) -> str:
    return servers.endpoint("moto")


@pytest.fixture(params=["moto", "dynamodb-local"])
def endpoint(request: pytest.FixtureRequest, servers: ServerPool) -> str:
    return servers.endpoint(request.param)


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], ApiModels]]:
    cache: dict[tuple[str, str], ApiModels] = {}
    yield cache


@pytest.fixture
def persisted(endpoint: str, shared_models: dict[tuple[str, str], ApiModels], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``persisted(definitions)``: models whose tables are created once per server and emptied after each test."""
    used: list[ApiModels] = []

    def get(definitions: str) -> ApiModels:
        key = (endpoint, definitions)
        if key not in shared_models:
            shared_models[key] = Services(tmp_path_factory.mktemp("service"), endpoint).models(definitions)
        used.append(shared_models[key])
        return shared_models[key]

    yield get
    for models in used:
        truncate(macaron_dynamodb.tables_of(models))


@pytest.fixture
def services(tmp_path: Path, endpoint: str) -> Iterator[Services]:
    maker = Services(tmp_path, endpoint)
    yield maker
    maker.cleanup()


@pytest.fixture
def moto_services(tmp_path: Path, moto: str) -> Iterator[Services]:
    maker = Services(tmp_path, moto)
    yield maker
    maker.cleanup()
