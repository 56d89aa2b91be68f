"""The client and its assertions, against real services under gunicorn."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from unit_support import HELLOWORLD, SAMPLE, clean_environment, copy_service

from macaron import config as macaron_config
from macaron_unit import Client, ServerUnreachable, ServiceServer, generate_test_token
from macaron_unit.server import free_port


@pytest.fixture
def hello(helloworld_server: ServiceServer) -> Client:
    return Client(helloworld_server.url)


@pytest.fixture
def sample(sample_server: ServiceServer) -> Client:
    return Client(sample_server.url)


def test_assert_json_returns_the_decoded_body(hello: Client) -> None:
    assert hello.get("/v1/hello/Ada", params={"lang": "sv"}).assert_json() == {"greetings": ["Hej, Ada!"], "caller": None}


def test_a_failed_assertion_names_the_request_the_status_and_the_body(hello: Client) -> None:
    with pytest.raises(AssertionError) as failure:
        hello.get("/v1/hello/Ada", params={"times": 99}).assert_json(200)
    message = str(failure.value)
    assert "expected status 200, got 400" in message
    assert f"GET {hello.base_url}/v1/hello/Ada?times=99" in message
    assert '"error":"INVALID_PARAMETER"' in message


def test_assert_ok_wants_the_empty_object(hello: Client) -> None:
    hello.get("/ping").assert_ok()
    with pytest.raises(AssertionError, match=r"expected the body \{\}"):
        hello.get("/version").assert_ok()


def test_assert_dict_checks_keys_and_values_and_names_every_problem(hello: Client) -> None:
    body = hello.get("/version").assert_dict({"name": "helloworld"}, keys=("apis", "env"))
    assert body["version"] == "0.1.0"
    with pytest.raises(AssertionError) as failure:
        hello.get("/version").assert_dict({"name": "other", "flavour": "vanilla"}, keys=("colour",))
    message = str(failure.value)
    assert "missing key 'colour'" in message
    assert "'name' is 'helloworld', expected 'other'" in message
    assert "missing key 'flavour'" in message


def test_assert_error_checks_status_code_and_error_shape(hello: Client) -> None:
    error = hello.post("/v1/questions", json={"text": "Really?!"}).assert_error(422, "RHETORICAL_QUESTION")
    assert error["user_message"] == "That one needs no answer."
    with pytest.raises(AssertionError, match="expected error NOT_THIS, got RHETORICAL_QUESTION"):
        hello.post("/v1/questions", json={"text": "Really?!"}).assert_error(422, "NOT_THIS")
    with pytest.raises(AssertionError, match="expected status 422, got 201"):
        hello.post("/v1/questions", json={"text": "Really?"}).assert_error(422)


def test_assert_error_refuses_a_body_that_is_not_an_error(hello: Client) -> None:
    with pytest.raises(AssertionError, match="lacks status, error"):
        hello.post("/v1/questions", json={"text": "Really?"}).assert_error(201)


def test_assert_error_takes_the_services_own_error_without_error_id(tmp_path: Path) -> None:
    service = copy_service(HELLOWORLD, tmp_path / "helloworld")
    spec = service / "apis" / "helloworld.yaml"
    text = spec.read_text()
    full_error = "    required: [status, error, error_description, error_id]\n"
    assert full_error in text
    spec.write_text(text.replace(full_error, "    required: [status, error, error_description]\n", 1).replace("      error_id: {type: string}\n", "", 1))
    with ServiceServer(service) as server:
        reply = Client(server.url).get("/v1/hello/Ada", params={"times": 99})
        error = reply.assert_error(400, "INVALID_PARAMETER")
    assert "error_id" not in error and "99" in error["error_description"]


def test_put_patch_and_delete_send_their_method(hello: Client) -> None:
    for method in (hello.put, hello.patch, hello.delete):
        reply = method("/v1/questions", json={"text": "Why?"})
        reply.assert_error(405)
        assert reply.response.request.method == method.__name__.upper()
        assert "POST" in reply.headers["Allow"]


def test_multipart_upload(hello: Client) -> None:
    reply = hello.post("/v1/upload", data={"caption": "c"}, files={"file": ("a.bin", b"\x00\x01", "application/octet-stream")})
    reply.assert_dict({"filename": "a.bin", "size": 2})


def test_assert_redirect_returns_the_absolute_target(sample: Client) -> None:
    assert sample.get("/v1/old-whoami").assert_redirect("/v1/whoami") == f"{sample.base_url}/v1/whoami"
    with pytest.raises(AssertionError, match="expected a redirect to /elsewhere, got /v1/whoami"):
        sample.get("/v1/old-whoami").assert_redirect("/elsewhere")
    with pytest.raises(AssertionError, match="expected status one of 301, 302"):
        sample.get("/ping").assert_redirect()


def test_assert_text_for_html(sample: Client) -> None:
    assert "<h1>Hello from sample</h1>" in sample.get("/v1/page").assert_text(contains="Hello", content_type="text/html")
    with pytest.raises(AssertionError, match=re.escape("expected content-type text/..., got application/json")):
        sample.get("/ping").assert_text()


def test_authenticated_client_sends_a_token_from_the_service_config(sample: Client) -> None:
    sample.get("/v1/whoami").assert_error(401, "AUTHORIZATION_HEADER_MISSING")
    admin = sample.authenticated("ada", data={"role": "admin"}, service=str(SAMPLE))
    admin.get("/v1/whoami").assert_dict({"user_id": "ada", "role": "admin"})
    admin.get("/v1/whoami", token=None).assert_error(401, "AUTHORIZATION_HEADER_MISSING")


def test_a_token_from_another_config_is_refused(sample: Client) -> None:
    # helloworld has no jwt_secret: a token cannot even be issued from its config.
    with pytest.raises(Exception, match="jwt_secret"):
        generate_test_token(service=HELLOWORLD)
    sample.with_token(generate_test_token(service=SAMPLE) + "x").get("/v1/whoami").assert_error(401, "TOKEN_INVALID")


def test_generate_test_token_leaves_the_process_config_alone() -> None:
    mine = macaron_config.load_config(HELLOWORLD)
    macaron_config.set_config(mine)
    try:
        generate_test_token(service=SAMPLE)
        assert macaron_config.get_config() is mine
    finally:
        macaron_config.set_config(None)


def test_test_tokens_can_carry_scopes(sample: Client) -> None:
    def scope_of(token: str | None) -> object:
        return jwt.decode(token or "", options={"verify_signature": False}).get("scope")

    assert scope_of(generate_test_token(service=SAMPLE, scopes=["pets:read", "admin"])) == "pets:read admin"
    assert scope_of(sample.authenticated("ada", scopes=["pets:write"], service=str(SAMPLE)).token) == "pets:write"
    assert scope_of(generate_test_token(service=SAMPLE)) is None


def test_assert_requires_auth(sample: Client) -> None:
    sample.assert_requires_auth("GET", "/v1/whoami")
    sample.assert_requires_auth("GET", "/auth/version")
    with pytest.raises(AssertionError, match="expected status 401, got 200"):
        sample.assert_requires_auth("GET", "/ping")


def test_assert_is_up_and_version(hello: Client) -> None:
    hello.assert_is_up()
    assert "helloworld" in hello.assert_version("helloworld")["apis"]
    with pytest.raises(AssertionError, match="'name' is 'helloworld', expected 'other'"):
        hello.assert_version("other")


def test_calls_wait_for_a_booting_server() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "macaron.wsgi:app"]
    process = subprocess.Popen(command, env=clean_environment(MACARON_SERVICE=str(HELLOWORLD)), cwd=HELLOWORLD)
    try:
        with pytest.raises(ServerUnreachable):  # gunicorn cannot be listening yet
            Client(url, boot_timeout=0).get("/ping")
        Client(url, boot_timeout=30).post("/v1/questions", json={"text": "Is it up?"}).assert_dict({"text": "Yes."}, status=201)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_no_server_is_a_clear_error_after_the_boot_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match=f"GET {url}/ping: no server accepted the connection within 0.5 s"):
        Client(url, boot_timeout=0.5).get("/ping")
    assert 0.5 <= time.monotonic() - started < 5
