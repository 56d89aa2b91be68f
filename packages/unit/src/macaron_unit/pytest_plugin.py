"""pytest plugin (entry point ``pytest11``): fixtures that test a macaron service over HTTP.

Nothing happens unless a test asks for one of the fixtures: the plugin is loaded in
every pytest run of an environment where macaron-unit is installed.

Target, first found wins:

1. ``--macaron-url URL`` or ``MACARON_TEST_URL``: a running server (local, a container, staging, live);
2. otherwise the service folder (``--macaron-service PATH``, ``MACARON_SERVICE``, else the
   nearest folder holding a macaron.yaml at or above the test file), served under gunicorn
   on a free 127.0.0.1 port from its first use until the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from macaron_unit.client import Client
    from macaron_unit.server import ServiceServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("macaron", "macaron black-box tests (macaron-unit)")
    group.addoption("--macaron-url", default=None, help="Test the server at this URL instead of starting one (env MACARON_TEST_URL).")
    group.addoption(
        "--macaron-service", default=None, help="Service folder to serve and to read the config from (env MACARON_SERVICE; default: found from the test file)."
    )
    group.addoption("--macaron-env", default=None, help="Config overlay macaron.<env>.yaml for the server and for tokens (env MACARON_ENV).")
    group.addoption("--macaron-token", default=None, help="Token for macaron_auth_client instead of one issued from the config (env MACARON_TEST_TOKEN).")


def _option(config: pytest.Config, name: str, variable: str) -> str | None:
    value = config.getoption(name) or os.environ.get(variable) or None
    return str(value) if value else None


class _Servers:
    """One gunicorn per service folder, started on first use, stopped at the end of the session."""

    def __init__(self, env: str | None) -> None:
        self.env = env
        self.servers: dict[Path, ServiceServer] = {}
        self.failures: dict[Path, str] = {}

    def get(self, service: Path) -> ServiceServer:
        from macaron_unit.server import ServerStartError, ServiceServer

        if service in self.failures:
            pytest.fail(self.failures[service], pytrace=False)
        if service not in self.servers:
            server = ServiceServer(service, self.env)
            try:
                server.start()
            except ServerStartError as exc:
                self.failures[service] = f"macaron: cannot serve the service under test: {exc}"
                pytest.fail(self.failures[service], pytrace=False)
            self.servers[service] = server
        return self.servers[service]

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def _macaron_servers(pytestconfig: pytest.Config) -> Iterator[_Servers]:
    servers = _Servers(_option(pytestconfig, "macaron_env", "MACARON_ENV"))
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def macaron_service(request: pytest.FixtureRequest) -> Path | None:
    """The folder of the service under test, or None when a URL is targeted and no folder is known."""
    from macaron_unit.server import find_service, is_service

    explicit = _option(request.config, "macaron_service", "MACARON_SERVICE")
    if explicit is not None:
        folder = Path(explicit).resolve()
        if not is_service(folder):
            pytest.fail(f"macaron: {folder} is not a service folder (no macaron.yaml)", pytrace=False)
        return folder
    return find_service(Path(request.path).parent) or find_service(Path(request.config.rootpath)) or find_service(Path.cwd())


@pytest.fixture(scope="module")
def macaron_url(request: pytest.FixtureRequest, _macaron_servers: _Servers, macaron_service: Path | None) -> str:
    """Base URL of the server under test: the one given, or gunicorn serving ``macaron_service``."""
    url = _option(request.config, "macaron_url", "MACARON_TEST_URL")
    if url is not None:
        return url.rstrip("/")
    if macaron_service is None:
        pytest.fail(
            "macaron: nothing to test: give --macaron-url URL (or MACARON_TEST_URL), or --macaron-service PATH, "
            "or put the tests inside a service folder (one holding macaron.yaml)",
            pytrace=False,
        )
    return _macaron_servers.get(macaron_service).url


@pytest.fixture(scope="module")
def macaron_token(request: pytest.FixtureRequest, macaron_service: Path | None) -> str:
    """A token the service accepts: the one given, or one issued for user ``test-user`` from the service's config."""
    from macaron_unit.auth import generate_test_token

    given = _option(request.config, "macaron_token", "MACARON_TEST_TOKEN")
    if given is not None:
        return given
    if macaron_service is None:
        pytest.fail("macaron: no service folder to read jwt_secret from: give --macaron-service PATH or --macaron-token TOKEN", pytrace=False)
    return generate_test_token(service=macaron_service, env=_option(request.config, "macaron_env", "MACARON_ENV"))


def _client(request: pytest.FixtureRequest, servers: _Servers, service: Path | None, url: str, token: str | None) -> Client:
    from macaron_unit.client import Client

    server = servers.servers.get(service) if service is not None else None
    if server is not None and server.url == url:
        # Read by pytest_runtest_makereport to attach what the server logged during a failed test.
        request.node.stash[_SERVER_LOG] = (server, server.log_size())
    return Client(url, token)


@pytest.fixture
def macaron_client(request: pytest.FixtureRequest, _macaron_servers: _Servers, macaron_service: Path | None, macaron_url: str) -> Iterator[Client]:
    """A :class:`macaron_unit.Client` to the server under test, without token."""
    client = _client(request, _macaron_servers, macaron_service, macaron_url, None)
    yield client
    client.close()


@pytest.fixture
def macaron_auth_client(
    request: pytest.FixtureRequest, _macaron_servers: _Servers, macaron_service: Path | None, macaron_url: str, macaron_token: str
) -> Iterator[Client]:
    """A :class:`macaron_unit.Client` to the server under test that sends ``macaron_token``."""
    client = _client(request, _macaron_servers, macaron_service, macaron_url, macaron_token)
    yield client
    client.close()


_SERVER_LOG = pytest.StashKey[tuple["ServiceServer", int]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when == "call":
        started = item.stash.get(_SERVER_LOG, None)
        if started is not None:
            server, offset = started
            logged = server.log_since(offset).strip()
            if logged:
                report.sections.append(("macaron server log", logged))
    return report
