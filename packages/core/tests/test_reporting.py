"""Crash, error and slow-call reports: what they contain and who gets them."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from ops_support import HANDLERS, SPEC, Sink

from macaron import context, hookimpl
from macaron.builtins.requests import RequestMiddleware
from macaron.config import ConfigError
from macaron.reporting import Reporting, report_error, report_slow
from service_maker import ServiceMaker

SERVICE = {"version": "1.2.3", "name": "shop"}


pytest_plugins = ["ops_fixtures"]  # sink, clean_logging
pytestmark = pytest.mark.usefixtures("clean_logging")


def client(services: ServiceMaker, sink: Sink, plugins: tuple[Any, ...] = (), **config: Any) -> FlaskClient:
    return services.app(SPEC, HANDLERS, plugins=plugins, config={**SERVICE, "error_reporter": sink.name, **config}).test_client()


def test_crash_report_of_an_uncaught_exception(services: ServiceMaker, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACARON_ENV", "staging")
    body = b'{"basket": [1, 2, 3]}'
    response = client(services, sink).post(
        "/crash?a=1&token=s3cret", data=body, content_type="application/json", headers={"X-Request-ID": "crash-1"}
    )
    assert response.status_code == 500
    report = sink.only()
    assert report["title"] == "shop: 500 SERVER_ERROR on POST /crash: ValueError: kaboom"
    assert report["error_id"] == response.json["error_id"]
    assert report["is_fatal"] is True
    assert report["exception"]["type"] == "ValueError"
    assert report["exception"]["message"] == "kaboom"
    assert 'raise ValueError("kaboom")' in report["exception"]["trace"]
    request = report["request"]
    assert (request["id"], request["method"], request["path"], request["body_size"]) == ("crash-1", "POST", "/crash", len(body))
    assert request["query"] == {"a": "1", "token": "[redacted]"}  # a secret in a URL never reaches a report
    assert 0 < request["duration_ms"] < 10_000
    assert report["user"] == {"id": "u-1"}
    assert report["service"] == {"name": "shop", "version": "1.2.3", "env": "staging", "host": socket.gethostname()}
    assert report["response"]["status"] == 500 and report["response"]["error"] == "SERVER_ERROR"
    assert "s3cret" not in str(report)


def test_a_response_that_breaks_the_spec_is_reported_with_what_was_wrong(services: ServiceMaker, sink: Sink) -> None:
    response = client(services, sink).get("/bad-response")
    assert response.status_code == 500 and response.json["error"] == "BAD_RESPONSE"
    report = sink.only()
    assert report["exception"]["type"] == "macaron.errors.BadResponse"
    assert "/id" in report["exception"]["message"] and "/id" in report["title"]
    assert "/id" not in response.json["error_description"]  # the detail stays on the server side


def test_a_5xx_answered_by_the_handler_itself_is_reported(services: ServiceMaker, sink: Sink) -> None:
    response = client(services, sink).get("/unavailable", headers={"X-Request-ID": "u-503"})
    assert response.status_code == 503
    report = sink.only()
    assert report["is_fatal"] is True and report["exception"] is None
    assert report["response"] == {"status": 503}
    assert report["request"]["id"] == "u-503"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secret_values_never_reach_reports_or_logs(
    services: ServiceMaker, sink: Sink, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, log_format: str
) -> None:
    monkeypatch.setenv("SHOP_DB_PASSWORD", "hunter2-very-secret")
    app = client(services, sink, log_format=log_format, env_secrets=["SHOP_DB_PASSWORD"], db_password="SHOP_DB_PASSWORD")
    capsys.readouterr()
    assert app.get("/leak").status_code == 500
    out = capsys.readouterr().out
    report = sink.only()
    assert "hunter2" not in out and "hunter2" not in json.dumps(report)
    assert report["exception"]["message"] == "login refused for password ****"
    assert "login refused for password ****" in report["title"]
    assert "connecting with ****" in out and "RuntimeError: login refused for password ****" in out


def test_an_exception_escaping_the_app_is_reported_and_its_context_ended() -> None:
    reports: list[dict[str, Any]] = []

    def broken_app(environ: dict[str, Any], start_response: Any) -> Any:
        raise MemoryError("out of memory while serving")

    middleware = RequestMiddleware(broken_app, Reporting(reporters=[("list", reports.append)], service={"name": "shop"}))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/big", "HTTP_X_REQUEST_ID": "esc-1"}
    with pytest.raises(MemoryError):
        middleware(environ, lambda *args: None)
    (report,) = reports
    assert report["title"] == "shop: 500 on GET /big: MemoryError escaped the app: out of memory while serving"
    assert report["exception"]["type"] == "MemoryError" and report["request"]["id"] == "esc-1"
    assert context.current().request_id is None


def test_client_errors_are_not_reported(services: ServiceMaker, sink: Sink) -> None:
    app = client(services, sink)
    assert app.get("/things/not-a-number").status_code == 400
    assert app.get("/no/such/route").status_code == 404
    assert sink.reports == []


def test_report_error_from_a_handler(services: ServiceMaker, sink: Sink) -> None:
    response = client(services, sink).get("/report", headers={"X-Request-ID": "rep-1"})
    assert response.status_code == 200 and response.json == {"done": True}
    report = sink.only()
    assert report["title"] == "inventory out of sync"
    assert report["is_fatal"] is False
    assert report["data"] == {"order": 7}
    assert report["exception"]["type"] == "KeyError" and report["exception"]["message"] == "'sku-42'"
    assert (report["request"]["id"], report["request"]["method"], report["request"]["path"]) == ("rep-1", "GET", "/report")
    assert report["response"] is None
    assert report["service"]["name"] == "shop"


def test_report_error_outside_a_request_goes_to_the_service_reporters(services: ServiceMaker, sink: Sink) -> None:
    client(services, sink)
    report = report_error("nightly job found 3 orphans", data=[1, 2, 3])
    assert sink.only() is report
    assert report["request"]["method"] is None and report["request"]["id"] is None
    assert report["service"]["version"] == "1.2.3"


def test_a_failing_reporter_neither_breaks_the_response_nor_silences_the_others(
    services: ServiceMaker, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    app = client(services, sink, error_reporter=[f"{sink.module}.fail", sink.name])
    response = app.post("/crash")
    assert response.status_code == 500 and response.json["error"] == "SERVER_ERROR"
    assert sink.only()["error_id"] == response.json["error_id"]
    assert f"error reporter {sink.module}.fail failed" in capsys.readouterr().out


def test_hook_on_report(services: ServiceMaker, sink: Sink) -> None:
    seen: list[dict[str, Any]] = []

    class Broken:
        @hookimpl
        def on_report(self, report: dict[str, Any]) -> None:
            raise RuntimeError("plugin down")

    class Tracker:
        @hookimpl
        def on_report(self, report: dict[str, Any]) -> None:
            seen.append(report)

    app = client(services, sink, plugins=(Tracker(), Broken()))
    app.post("/crash")
    app.get("/report")
    assert [report["title"] for report in seen] == [report["title"] for report in sink.reports]
    assert [report["is_fatal"] for report in seen] == [True, False]


def test_slow_calls_over_the_global_threshold_give_a_non_fatal_report(services: ServiceMaker, sink: Sink) -> None:
    app = client(services, sink, report_slow_calls_ms=150)
    assert app.get("/things/1").status_code == 200
    assert sink.reports == []
    assert app.get("/slow?ms=200", headers={"X-Request-ID": "slow-1"}).status_code == 200
    report = sink.only()
    assert report["is_fatal"] is False
    assert report["title"].startswith("shop: slow call: GET /slow took ")
    assert report["title"].endswith(" ms (limit 150 ms)")
    assert report["data"]["limit_ms"] == 150 and report["data"]["duration_ms"] >= 200
    assert report["request"]["id"] == "slow-1" and report["request"]["query"] == {"ms": "200"}
    assert report["response"] == {"status": 200}


def test_report_slow_sets_the_threshold_of_one_endpoint(services: ServiceMaker, sink: Sink) -> None:
    app = client(services, sink, report_slow_calls_ms=150)
    # x-decorate-server: report_slow(max_ms=10) makes a 30 ms call slow...
    assert app.get("/slow-decorated?ms=30").status_code == 200
    report = sink.only()
    assert report["data"]["limit_ms"] == 10 and report["data"]["duration_ms"] >= 30
    assert "GET /slow-decorated" in report["title"]
    # ...and @report_slow(max_ms=2000) lets a 200 ms call pass the service's 150 ms.
    assert app.get("/slow-lenient?ms=200").status_code == 200
    assert len(sink.reports) == 1


def test_report_slow_outside_a_request_times_the_function(services: ServiceMaker, sink: Sink) -> None:
    client(services, sink)

    @report_slow(max_ms=10)
    def rebuild_index(pause: float) -> str:
        time.sleep(pause)
        return "done"

    assert rebuild_index(0) == "done"
    assert sink.reports == []
    assert rebuild_index(0.03) == "done"
    report = sink.only()
    assert report["data"]["function"].endswith("rebuild_index") and report["data"]["duration_ms"] >= 30
    assert "rebuild_index() took" in report["title"]


def test_reporting_makes_no_network_call(services: ServiceMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    app = services.app(SPEC, HANDLERS, config={"report_slow_calls_ms": 1}).test_client()
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    assert app.post("/crash").status_code == 500
    assert app.get("/slow?ms=5").status_code == 200
    assert app.get("/report").status_code == 200
    assert attempts == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"error_reporter": "no_such_module_anywhere.send"}, r"error_reporter 'no_such_module_anywhere.send': no module named 'no_such_module_anywhere'"),
        ({"error_reporter": "json.no_such_function"}, r"error_reporter 'json.no_such_function': module json has no function 'no_such_function'"),
        ({"error_reporter": {"not": "a path"}}, r"error_reporter must be a dotted path"),
        ({"report_slow_calls_ms": -5}, r"report_slow_calls_ms must be a number of milliseconds above 0, not -5"),
        ({"report_slow_calls_ms": "fast"}, r"report_slow_calls_ms must be a number"),
    ],
)
def test_bad_reporting_settings_stop_start_up(services: ServiceMaker, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"macaron\.yaml: " + message):
        services.app(SPEC, HANDLERS, config=config)


def test_report_slow_rejects_a_bad_threshold() -> None:
    with pytest.raises(ValueError, match="max_ms must be a number of milliseconds above 0"):
        report_slow(max_ms=0)
