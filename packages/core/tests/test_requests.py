"""Request ids and the request log: from the X-Request-ID header to every log line, the Error body, the response and crash reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from ops_support import HANDLERS, SPEC, Sink

from macaron import context
from macaron.builtins.requests import sane_request_id
from macaron.config import ConfigError
from servers import gunicorn_service
from service_maker import ServiceMaker

FRESH_ID = re.compile(r"[0-9a-f]{16}")


pytest_plugins = ["ops_fixtures"]  # sink, clean_logging
pytestmark = pytest.mark.usefixtures("clean_logging")


def test_request_id_flows_from_header_to_log_lines_error_body_response_and_crash_report(
    services: ServiceMaker, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    client = services.client(SPEC, HANDLERS, config={"log_level": "info", "error_reporter": sink.name})
    capsys.readouterr()
    response = client.post("/crash", json={"x": 1}, headers={"X-Request-ID": "req-42.a"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-42.a"
    assert response.json["request_id"] == "req-42.a"
    assert sink.only()["request"]["id"] == "req-42.a"
    lines = capsys.readouterr().out.splitlines()
    # The handler's own line, macaron's error line (with its traceback) and the request line all carry the id.
    handler_line = next(line for line in lines if "about to crash" in line)
    error_line = next(line for line in lines if "SERVER_ERROR" in line)
    request_line = next(line for line in lines if "macaron.request" in line)
    for line in (handler_line, error_line, request_line):
        assert "[req-42.a " in line, line
    assert "POST /crash 500" in request_line
    assert "u-1]" in request_line  # the user id the handler set


def test_a_request_without_id_gets_a_fresh_one_on_the_response_and_in_the_error_body(services: ServiceMaker) -> None:
    client = services.client(SPEC, HANDLERS)
    first, second = client.get("/things/1"), client.get("/things/2")
    assert FRESH_ID.fullmatch(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert first.json["request_id"] == first.headers["X-Request-ID"]  # what the handler saw
    missing = client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json["request_id"] == missing.headers["X-Request-ID"]
    assert FRESH_ID.fullmatch(missing.json["request_id"])


@pytest.mark.parametrize("bad", ["has spaces", "x" * 129, "<script>alert(1)</script>", "-starts-with-a-dash", "a\"quote", "é"])
def test_an_insane_request_id_is_replaced(services: ServiceMaker, bad: str) -> None:
    client = services.client(SPEC, HANDLERS)
    response = client.get("/things/1", headers={"X-Request-ID": bad})
    assert response.status_code == 200
    assert FRESH_ID.fullmatch(response.headers["X-Request-ID"])
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_sane_ids_are_kept_as_sent() -> None:
    for good in ("3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "Root=1-67891233-abcdef012345678912345678", "a" * 128, "svc:job/7+x"):
        assert sane_request_id(good) == good
    assert FRESH_ID.fullmatch(sane_request_id(None))


def test_quiet_by_default_nothing_is_printed_per_request(services: ServiceMaker, capsys: pytest.CaptureFixture[str]) -> None:
    client = services.client(SPEC, HANDLERS.replace('log.warning("serving thing %s", thing_id)', "pass"))
    capsys.readouterr()
    for _ in range(3):
        assert client.get("/things/1").status_code == 200
    assert client.get("/no/such/route").status_code == 404
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_one_text_line_per_request_with_method_path_status_ms_and_ids_but_no_secrets(
    services: ServiceMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    client = services.client(SPEC, HANDLERS, config={"log_level": "info"})
    capsys.readouterr()
    response = client.get(
        "/things/7?as_user=user-9&token=s3cret-in-url",
        headers={"X-Request-ID": "abc123", "Authorization": "Bearer eyJ.sekrit.sig"},
    )
    assert response.status_code == 200
    out = capsys.readouterr().out
    request_lines = [line for line in out.splitlines() if "macaron.request" in line]
    assert len(request_lines) == 1, out
    assert re.search(r" INFO macaron\.request \[abc123 user-9\] GET /things/7 200 \d+\.\d\dms$", request_lines[0]), request_lines[0]
    assert "s3cret-in-url" not in out and "sekrit" not in out and "Bearer" not in out


def test_a_path_cannot_forge_a_log_line(services: ServiceMaker, capsys: pytest.CaptureFixture[str]) -> None:
    client = services.client(SPEC, HANDLERS, config={"log_level": "info"})
    capsys.readouterr()
    client.get("/things/%0A2000-01-01 INFO macaron.request [forged -] GET /admin 200")
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1, out
    assert "\\n2000-01-01" in out


def test_json_lines(services: ServiceMaker, capsys: pytest.CaptureFixture[str]) -> None:
    client = services.client(SPEC, HANDLERS, config={"log_level": "INFO", "log_format": "json"})
    capsys.readouterr()
    client.get("/things/3?as_user=user-3", headers={"X-Request-ID": "json-1"})
    client.post("/crash", headers={"X-Request-ID": "json-2"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    served = [line for line in lines if line["logger"] == "macaron.request"]
    assert [(line["method"], line["path"], line["status"], line["request_id"], line["user_id"]) for line in served] == [
        ("GET", "/things/3", 200, "json-1", "user-3"),
        ("POST", "/crash", 500, "json-2", "u-1"),
    ]
    assert all(isinstance(line["ms"], float) and line["level"] == "INFO" and line["time"].endswith("Z") for line in served)
    handler_line = next(line for line in lines if line["message"] == "serving thing 3")
    assert (handler_line["request_id"], handler_line["level"], handler_line["logger"]) == ("json-1", "WARNING", "test.handlers")
    crash_line = next(line for line in lines if line["level"] == "ERROR")
    assert crash_line["request_id"] == "json-2"
    assert "ValueError: kaboom" in crash_line["exception"]


def test_identity_never_outlives_its_request(services: ServiceMaker) -> None:
    client = services.client(SPEC, HANDLERS)
    assert client.get("/things/1?as_user=alice").json["user"] == "alice"
    assert context.current().user_id is None and context.current().request_id is None
    assert client.get("/things/1").json["user"] is None  # the same thread serves the next caller


@pytest.mark.parametrize(("config", "named"), [({"log_level": "loud"}, "log_level"), ({"log_format": "xml"}, "log_format")])
def test_bad_log_settings_stop_start_up(services: ServiceMaker, config: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"macaron\.yaml: {named} must be one of"):
        services.app(SPEC, HANDLERS, config=config)


REPORTER = """
import json
import os


def write(report):
    with open(os.environ["REPORT_FILE"], "a") as stream:
        stream.write(json.dumps(report) + "\\n")
"""


def test_request_id_round_trip_and_request_log_over_gunicorn(services: ServiceMaker, tmp_path: Path) -> None:
    root = services.write(
        SPEC,
        HANDLERS,
        config={"log_level": "info", "error_reporter": "file_reporter.write"},
        files={"file_reporter.py": REPORTER},
    )
    output, report_file = tmp_path / "server.log", tmp_path / "reports.jsonl"
    with gunicorn_service(root, env={"REPORT_FILE": str(report_file)}, output=output) as url:
        served = requests.get(f"{url}/things/5", headers={"X-Request-ID": "gunicorn-rt-1"}, timeout=10)
        crashed = requests.post(f"{url}/crash", json={}, headers={"X-Request-ID": "gunicorn-crash-2"}, timeout=10)
        fresh = requests.get(f"{url}/things/6", timeout=10)
    assert served.status_code == 200 and served.headers["X-Request-ID"] == "gunicorn-rt-1"
    assert crashed.status_code == 500
    assert crashed.headers["X-Request-ID"] == crashed.json()["request_id"] == "gunicorn-crash-2"
    assert FRESH_ID.fullmatch(fresh.headers["X-Request-ID"])
    log = output.read_text()
    assert re.search(r"\[gunicorn-rt-1 -\] GET /things/5 200 [\d.]+ms", log), log
    assert re.search(r"\[gunicorn-crash-2 u-1\] POST /crash 500 [\d.]+ms", log), log
    assert f"[{fresh.headers['X-Request-ID']} -] GET /things/6 200" in log
    (report,) = [json.loads(line) for line in report_file.read_text().splitlines()]
    assert (report["request"]["id"], report["user"]["id"], report["exception"]["type"]) == ("gunicorn-crash-2", "u-1", "ValueError")


STREAM_SPEC = """
paths:
  /feed:
    get:
      x-bind-server: HANDLERS.feed
      produces: [text/plain]
      parameters:
        - {name: lines, in: query, type: integer, default: 3}
      responses:
        200: {description: lines made while the body is sent, schema: {type: string}}
  /broken:
    get:
      x-bind-server: HANDLERS.broken
      produces: [text/plain]
      responses:
        200: {description: a body that fails half-way, schema: {type: string}}
  /who:
    get:
      x-bind-server: HANDLERS.who
      responses:
        200: {description: who the server thinks is calling, schema: {type: object}}
"""

STREAM_HANDLERS = """
import logging
from flask import Response
from macaron import context

log = logging.getLogger("feed")


def feed(lines):
    context.update(user_id="streamer")

    def body():
        for n in range(lines):
            log.info("line %d", n)
            yield f"{n} {context.get_request_id()} {context.get_userid()}\\n"

    return Response(body(), mimetype="text/plain")


def broken():
    def body():
        yield "first\\n"
        raise RuntimeError("the feed ran dry")

    return Response(body(), mimetype="text/plain")


def who():
    return {"user": context.get_userid()}
"""


def test_a_streamed_body_is_made_in_its_request_context_and_logged_after_it(services: ServiceMaker, tmp_path: Path) -> None:
    root = services.write(
        STREAM_SPEC, STREAM_HANDLERS, config={"log_level": "info", "error_reporter": "file_reporter.write"}, files={"file_reporter.py": REPORTER}
    )
    output, report_file = tmp_path / "server.log", tmp_path / "reports.jsonl"
    with gunicorn_service(root, env={"REPORT_FILE": str(report_file)}, output=output, workers=1) as url:
        streamed = requests.get(f"{url}/feed?lines=3", headers={"X-Request-ID": "stream-1"}, timeout=10)
        after = requests.get(f"{url}/who", timeout=10)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the 200 status line was sent; the body breaks off
            requests.get(f"{url}/broken", headers={"X-Request-ID": "stream-2"}, timeout=10)
    assert streamed.status_code == 200
    assert streamed.text.splitlines() == ["0 stream-1 streamer", "1 stream-1 streamer", "2 stream-1 streamer"]
    assert after.json() == {"user": None}  # the streamed request's identity did not stay on the worker
    log = output.read_text()
    assert "[stream-1 streamer] line 2" in log, log
    # The request line comes once the body is sent, so its time covers the whole stream.
    assert log.index("[stream-1 streamer] line 2") < log.index("GET /feed 200"), log
    # A body that breaks half-way is a crash: reported with its request id, logged as a 500.
    (report,) = [json.loads(line) for line in report_file.read_text().splitlines()]
    assert report["request"]["id"] == "stream-2" and report["exception"]["type"] == "RuntimeError", report
    assert "GET /broken 500" in log, log
