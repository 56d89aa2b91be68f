"""The pytest plugin, run in child pytest processes as a user runs it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import requests
from unit_support import BUGGY, HELLOWORLD, ROOT, SAMPLE, clean_environment, copy_service, run_pytest

from macaron_unit import ServiceServer


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def test_a_session_that_asks_for_no_fixture_starts_nothing(tmp_path: Path) -> None:
    # Inside a service folder, so a server would have something to serve.
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    write(
        service / "checks" / "test_plain.py",
        """
        import sys

        def test_plugin_loaded_but_idle(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("macaron")
            assert "macaron_unit.server" not in sys.modules
            assert "macaron_unit.client" not in sys.modules
        """,
    )
    result = run_pytest(service, "checks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_fixtures_serve_the_service_above_the_tests_once_per_session(tmp_path: Path) -> None:
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    for name in ("a", "b"):
        write(
            service / "blackbox" / f"test_{name}.py",
            f"""
            from pathlib import Path

            def test_{name}(macaron_client, macaron_url, macaron_service):
                macaron_client.get("/v1/hello/{name}").assert_dict({{"greetings": ["Hello, {name}!"]}})
                assert macaron_service == Path({str(service)!r})
                Path({str(tmp_path)!r}, "url-{name}").write_text(macaron_url)
            """,
        )
    result = run_pytest(service, "blackbox")
    assert result.returncode == 0, result.stdout + result.stderr
    url = (tmp_path / "url-a").read_text()
    assert url.startswith("http://127.0.0.1:")
    assert (tmp_path / "url-b").read_text() == url  # one server for the session
    with pytest.raises(requests.ConnectionError):  # stopped at the end of the session
        requests.get(url + "/ping", timeout=2)


USES_TARGET = """
def test_target(macaron_url, macaron_client, macaron_auth_client, macaron_token):
    assert macaron_url == {url!r}
    macaron_client.get("/v1/whoami").assert_error(401, "AUTHORIZATION_HEADER_MISSING")
    macaron_auth_client.get("/v1/whoami").assert_dict({{"user_id": "test-user"}})
"""


def test_a_running_server_by_option(tmp_path: Path, sample_server: ServiceServer) -> None:
    write(tmp_path / "test_target.py", USES_TARGET.format(url=sample_server.url))
    result = run_pytest(tmp_path, "--macaron-url", sample_server.url + "/", "--macaron-service", str(SAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_running_server_by_environment(tmp_path: Path, sample_server: ServiceServer) -> None:
    write(tmp_path / "test_target.py", USES_TARGET.format(url=sample_server.url))
    result = run_pytest(tmp_path, env=clean_environment(MACARON_TEST_URL=sample_server.url, MACARON_SERVICE=str(SAMPLE)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_given_token_replaces_the_issued_one(tmp_path: Path, sample_server: ServiceServer) -> None:
    write(
        tmp_path / "test_token.py",
        """
        def test_token(macaron_token, macaron_auth_client):
            assert macaron_token == "not-a-jwt"
            macaron_auth_client.get("/v1/whoami").assert_error(401, "TOKEN_INVALID")
        """,
    )
    result = run_pytest(tmp_path, "--macaron-url", sample_server.url, "--macaron-token", "not-a-jwt")
    assert result.returncode == 0, result.stdout + result.stderr


def test_nothing_to_test_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "test_lost.py", "def test_lost(macaron_client):\n    pass\n")
    result = run_pytest(tmp_path)
    assert result.returncode == 1
    assert "macaron: nothing to test: give --macaron-url URL" in result.stdout


def test_a_service_that_cannot_start_fails_its_tests_with_the_reason(tmp_path: Path) -> None:
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    spec = service / "apis" / "helloworld.yaml"
    spec.write_text(spec.read_text().replace("helloworld.api.ask", "helloworld.api.no_such_handler"))
    for name in ("a", "b"):
        write(service / "blackbox" / f"test_{name}.py", f"def test_{name}(macaron_client):\n    pass\n")
    result = run_pytest(service, "blackbox")
    assert result.returncode == 1
    assert "2 errors" in result.stdout
    assert result.stdout.count("macaron: cannot serve the service under test") >= 2
    assert "has no function 'no_such_handler'" in result.stdout


def test_a_failed_test_shows_what_the_server_logged(tmp_path: Path) -> None:
    service = copy_service(BUGGY, tmp_path / "buggy")
    write(
        service / "blackbox" / "test_split.py",
        """
        def test_split_between_nobody(macaron_client):
            macaron_client.get("/v1/split/100", params={"people": 0}).assert_dict({"share": 0})
        """,
    )
    result = run_pytest(service, "blackbox")
    assert result.returncode == 1
    assert "expected status 200, got 500" in result.stdout
    assert "macaron server log" in result.stdout
    assert "ZeroDivisionError" in result.stdout


def test_a_macaron_test_case_gets_the_fixtures_before_set_up(tmp_path: Path) -> None:
    # The example of docs/testing.md#coming-from-pymacaron, and the attributes PyMacaron's classes read.
    docs = (ROOT / "docs" / "testing.md").read_text()
    section = docs[docs.index("## Coming from PyMacaron") :]
    example = section[section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python\n") + 10)]
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    write(service / "testaccept" / "test_doc.py", example)
    write(
        service / "testaccept" / "test_attributes.py",
        """
        from macaron_unit import MacaronTestCase


        class Attributes(MacaronTestCase):
            def setUp(self):
                self.seen_in_set_up = self.client.base_url

            def test_target(self):
                self.assertEqual(self.seen_in_set_up, self.base_url)
                self.assertEqual(self.base_url, "http://%s:%s" % (self.host, self.port))
                self.token = "given"
                self.assertEqual(self.token, "given")
        """,
    )
    result = run_pytest(service, "testaccept/test_doc.py", "testaccept/test_attributes.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
