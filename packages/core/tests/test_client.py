"""Clients built from specs: two real services under gunicorn, the shop calling the items service."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from macaron import context
from macaron.client import BadClientRequest, BadRemoteResponse, RemoteTimeout, RemoteUnavailable, load_clients
from macaron.config import ConfigError
from macaron.errors import MacaronException
from servers import free_port, gunicorn_service

SERVICES = Path(__file__).parent / "services"


@pytest.fixture(scope="module")
def items_url() -> Iterator[str]:
    with gunicorn_service(SERVICES / "items") as url:
        yield url


@pytest.fixture(scope="module")
def shop_url(items_url: str) -> Iterator[str]:
    with gunicorn_service(SERVICES / "shop", env={"ITEMS_URL": items_url}) as url:
        yield url


@pytest.fixture
def items(items_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """The shop's client of the items service, used from this process as a script would."""
    monkeypatch.setenv("ITEMS_URL", items_url)
    return load_clients(SERVICES / "shop")["items"]


def test_models_travel_both_ways_through_a_service(shop_url: str) -> None:
    shown = requests.get(f"{shop_url}/shop/items/1", timeout=5)
    assert shown.status_code == 200
    assert shown.json() == {"id": 1, "name": "teapot", "price": 12.5, "added": "2024-03-01"}

    created = requests.post(f"{shop_url}/shop/items", json={"name": "cup", "price": 3}, timeout=5)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "cup" and body["price"] == 3 and body["added"] == "2024-05-01" and body["id"] >= 2


def test_a_remote_error_keeps_its_status_code_and_id_across_services(shop_url: str) -> None:
    response = requests.get(f"{shop_url}/shop/items/999", timeout=5)
    assert response.status_code == 404
    error = response.json()
    assert error["error"] == "ITEM_NOT_FOUND"
    assert error["user_message"] == "That item does not exist."
    assert error["error_id"]


def test_a_remote_errors_details_reach_the_caller_and_pass_through_a_service(items: object, shop_url: str) -> None:
    with pytest.raises(MacaronException) as raised:
        items.create_item({"name": "gold cup", "price": 5000})  # type: ignore[attr-defined]
    assert (raised.value.status, raised.value.code) == (422, "PRICE_TOO_HIGH")
    assert raised.value.extra == {"errors": [{"field": "/body/price", "message": "is over 1000"}], "limit": 1000}
    passed = requests.post(f"{shop_url}/shop/items", json={"name": "gold cup", "price": 5000}, timeout=5)
    assert passed.status_code == 422
    body = passed.json()
    assert body["errors"] == [{"field": "/body/price", "message": "is over 1000"}] and body["limit"] == 1000
    assert body["request_id"] == passed.headers["X-Request-ID"]  # the shop's own request id, not a stale one


def test_script_call_returns_models_and_raises_errors(items: object) -> None:
    item = items.get_item(item_id=1)  # type: ignore[attr-defined]
    assert item.name == "teapot" and item.added == dt.date(2024, 3, 1)
    with pytest.raises(MacaronException) as raised:
        items.get_item(item_id=424242)  # type: ignore[attr-defined]
    assert raised.value.status == 404 and raised.value.code == "ITEM_NOT_FOUND"
    error = items.get_item(item_id=424242, _raise=False)  # type: ignore[attr-defined]
    assert error.error == "ITEM_NOT_FOUND" and error.status == 404


def test_bad_parameters_and_bodies_are_refused_before_sending(items: object) -> None:
    with pytest.raises(BadClientRequest) as raised:
        items.create_item({"name": 5})  # type: ignore[attr-defined]
    fields = {problem["field"] for problem in raised.value.extra["errors"]}
    assert fields == {"/body/name", "/body/price"}
    with pytest.raises(TypeError, match="unexpected argument"):
        items.get_item(itemid=1)  # type: ignore[attr-defined]


def test_read_timeout_names_api_operation_and_url(items: object, items_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(RemoteTimeout) as raised:
        items.slow(ms=1500, _timeout=0.3, _retries=0)  # type: ignore[attr-defined]
    assert time.monotonic() - started < 1.4
    assert "items.slow" in str(raised.value) and f"{items_url}/slow" in str(raised.value)


def test_idempotent_calls_retry_through_503_until_success(items: object) -> None:
    key = f"get-{time.monotonic_ns()}"
    assert items.flaky(key=key, fail=2).attempts == 3  # type: ignore[attr-defined]


def test_non_idempotent_calls_do_not_retry_a_503(items: object) -> None:
    key = f"post-{time.monotonic_ns()}"
    with pytest.raises(MacaronException) as raised:
        items.flaky_post(key=key, fail=1)  # type: ignore[attr-defined]
    assert raised.value.code == "NOT_YET"
    assert items.flaky_post(key=key, fail=1).attempts == 2  # type: ignore[attr-defined]


def test_a_down_remote_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ITEMS_URL", url)
    client = load_clients(SERVICES / "shop")["items"]
    with pytest.raises(RemoteUnavailable) as raised:
        client.get_item(item_id=1, _retries=1)  # type: ignore[attr-defined]
    message = str(raised.value)
    assert "items.get_item" in message and f"{url}/items/1" in message and "connection refused" in message
    assert raised.value.status == 503


def test_request_id_call_chain_and_token_are_forwarded(items: object) -> None:
    with context.use(context.CallContext(request_id="req-42", token="tok.en.x", call_chain=["gateway"])):
        seen = items.whoami(_forward_auth=True)  # type: ignore[attr-defined]
        silent = items.whoami()  # type: ignore[attr-defined]
    assert seen.request_id == "req-42"
    assert seen.authorization == "Bearer tok.en.x"
    assert seen.call_chain == "gateway,shop"
    assert silent.authorization is None  # the token goes only where the spec or the call asks


def test_an_endpoint_forwards_its_callers_request_id_token_and_call_chain(shop_url: str) -> None:
    token = jwt.encode({"sub": "ann", "exp": int(time.time()) + 60}, "shop-test-secret-0123456789abcdef0123", algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-e2e-1", "X-Call-Chain": "gateway"}
    response = requests.get(f"{shop_url}/shop/relay", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"request_id": "req-e2e-1", "authorization": f"Bearer {token}", "call_chain": "gateway,shop"}
    assert response.headers["X-Request-ID"] == "req-e2e-1"


def test_a_script_without_request_still_sends_a_request_id(items: object) -> None:
    seen = items.whoami()  # type: ignore[attr-defined]
    assert seen.request_id and len(seen.request_id) >= 16


def test_a_response_breaking_the_callers_spec_is_refused(tmp_path: Path, items_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = tmp_path / "strict"
    shutil.copytree(SERVICES / "shop", service)
    spec = (service / "apis" / "items.yaml").read_text()
    (service / "apis" / "items.yaml").write_text(spec.replace("  Seen:\n    type: object\n", "  Seen:\n    type: object\n    required: [missing_field]\n"))
    monkeypatch.setenv("ITEMS_URL", items_url)
    client = load_clients(service)["items"]
    with pytest.raises(BadRemoteResponse, match="missing_field"):
        client.whoami()  # type: ignore[attr-defined]


def test_in_process_calls_need_no_network(tmp_path: Path) -> None:
    service = tmp_path / "both"
    shutil.copytree(SERVICES / "items", service)
    shutil.copy(SERVICES / "shop" / "apis" / "shop.yaml", service / "apis" / "shop.yaml")
    shutil.copy(SERVICES / "shop" / "shop_api.py", service / "shop_api.py")
    # no url anywhere: a network call could not even be attempted
    (service / "macaron.yaml").write_text("name: both\njwt_secret: both-test-secret-0123456789abcdef\nclients:\n  items: {in_process: true, serve: true}\n")
    with gunicorn_service(service) as url:
        shown = requests.get(f"{url}/shop/items/1", timeout=5)
        assert shown.status_code == 200 and shown.json()["name"] == "teapot"
        missing = requests.get(f"{url}/shop/items/31337", timeout=5)
        assert missing.status_code == 404 and missing.json()["error"] == "ITEM_NOT_FOUND"


def test_a_client_without_url_is_a_start_up_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ITEMS_URL", raising=False)
    with pytest.raises(ConfigError, match="ITEMS_URL"):
        load_clients(SERVICES / "shop")


@pytest.mark.parametrize("value", ["no", 0, "false"])
def test_reject_unknown_fields_of_the_wrong_type_stops_a_client_as_it_stops_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object) -> None:
    service = tmp_path / "typo"
    shutil.copytree(SERVICES / "shop", service)
    with (service / "macaron.yaml").open("a") as config:
        config.write(f"reject_unknown_fields: {value!r}\n")
    monkeypatch.setenv("ITEMS_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=f"'reject_unknown_fields' must be true or false, not {value!r}"):
        load_clients(service)
