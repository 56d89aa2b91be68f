"""/ping as a load balancer's health check: ping_hook functions decide whether the service can serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from macaron.config import ConfigError
from servers import gunicorn_service
from service_maker import ServiceMaker

SPEC = """
paths:
  /hello:
    get:
      x-bind-server: HANDLERS.hello
      responses:
        200: {description: hi, schema: {type: object}}
"""

HANDLERS = """
def hello():
    return {}
"""

HEALTH = """
import os
from pathlib import Path

calls = []


def database():
    calls.append("database")
    state = Path(os.environ["HEALTH_FILE"]).read_text().strip()
    if state == "down":
        raise ConnectionError("db.internal:5432 refused the connection (password=hunter2)")
    return state != "degraded" and None


def queue():
    calls.append("queue")
"""


@pytest.fixture(autouse=True)
def health_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "health.txt"
    path.write_text("up")
    monkeypatch.setenv("HEALTH_FILE", str(path))
    sys.modules.pop("health", None)  # each test imports its own service's module
    yield path
    sys.modules.pop("health", None)


def test_every_ping_asks_every_hook_and_a_failure_is_a_503_that_keeps_its_reason_in_the_log(
    services: ServiceMaker, health_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = services.client(SPEC, HANDLERS, config={"ping_hook": ["health.database", "health.queue"]}, files={"health.py": HEALTH})
    import health  # the service's module, on sys.path once the app is built

    assert client.get("/ping").json == {}
    assert client.get("/ping").json == {}
    assert health.calls == ["database", "queue"] * 2

    health_file.write_text("down")
    with caplog.at_level(logging.WARNING, logger="macaron.ping"):
        response = client.get("/ping")
    assert response.status_code == 503
    assert response.json["error"] == "SERVICE_UNAVAILABLE"
    assert response.json["error_description"] == "health check health.database failed"
    assert "hunter2" not in response.get_data(as_text=True)  # the reason stays in the log
    assert "ConnectionError: db.internal:5432 refused the connection" in caplog.text
    assert client.get("/hello").status_code == 200  # only the health check says so; requests are still served

    health_file.write_text("degraded")  # a hook may also answer False
    assert client.get("/ping").json["error_description"] == "health check health.database failed"
    health_file.write_text("up")
    assert client.get("/ping").status_code == 200


def test_one_hook_by_its_name_over_gunicorn(services: ServiceMaker, health_file: Path) -> None:
    root = services.write(SPEC, HANDLERS, config={"ping_hook": "health.database"}, files={"health.py": HEALTH})
    with gunicorn_service(root) as url:
        assert requests.get(f"{url}/ping", timeout=10).json() == {}
        health_file.write_text("down")
        response = requests.get(f"{url}/ping", timeout=10)
    assert response.status_code == 503 and response.json()["error"] == "SERVICE_UNAVAILABLE"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("health.nothing_here", "ping_hook 'health.nothing_here': module health has no function 'nothing_here'"),
        ("check_everything", "ping_hook 'check_everything' must be a dotted path"),
        ({"a": "b"}, "ping_hook must be a dotted path (package.module.function) or a list of them"),
    ],
)
def test_a_ping_hook_that_cannot_be_called_stops_start_up(services: ServiceMaker, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"macaron\.yaml: " + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        services.app(SPEC, HANDLERS, config={"ping_hook": value}, files={"health.py": HEALTH})
