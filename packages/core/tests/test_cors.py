"""CORS: off by default; an allow-list of origins in macaron.yaml; preflights answered; errors readable by allowed pages."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from ops_support import HANDLERS, SPEC

from macaron.config import ConfigError
from service_maker import ServiceMaker

pytest_plugins = ["ops_fixtures"]
pytestmark = pytest.mark.usefixtures("clean_logging")

APP = "https://app.example.com"
EVIL = "https://evil.example.net"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}


def client(services: ServiceMaker, cors: Any = None) -> FlaskClient:
    return services.client(SPEC, HANDLERS, config={"cors": cors} if cors is not None else {})


def cors_headers(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("Access-Control-")}


def test_off_by_default(services: ServiceMaker) -> None:
    app = client(services)
    response = app.get("/things/1", headers={"Origin": APP})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    preflight = app.options("/crash", headers={"Origin": APP, **PREFLIGHT})
    assert cors_headers(preflight) == {}


def test_an_allowed_origin_gets_its_own_origin_back_and_can_read_the_request_id(services: ServiceMaker) -> None:
    response = client(services, {"origins": [APP, "http://localhost:3000"]}).get("/things/1", headers={"Origin": APP})
    assert response.status_code == 200
    assert cors_headers(response) == {"Access-Control-Allow-Origin": APP, "Access-Control-Expose-Headers": "X-Request-ID"}
    assert "Origin" in response.headers.getlist("Vary")


def test_an_origin_not_on_the_list_gets_no_cors_header(services: ServiceMaker) -> None:
    app = client(services, {"origins": [APP]})
    for origin in (EVIL, APP + ":8443", "http://app.example.com", "null"):
        response = app.get("/things/1", headers={"Origin": origin})
        assert response.status_code == 200
        assert cors_headers(response) == {}, origin
        assert "Origin" in response.headers.getlist("Vary")  # a cache must not serve it to the allowed origin


def test_preflight_from_an_allowed_origin_is_answered(services: ServiceMaker) -> None:
    response = client(services, {"origins": [APP]}).options("/crash", headers={"Origin": APP, **PREFLIGHT})
    assert response.status_code == 204
    headers = cors_headers(response)
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in headers["Access-Control-Allow-Methods"].split(", ")
    assert {"Authorization", "Content-Type"} <= set(headers["Access-Control-Allow-Headers"].split(", "))
    assert headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in headers
    assert response.headers["X-Request-ID"]


def test_preflight_from_another_origin_is_not_allowed(services: ServiceMaker) -> None:
    response = client(services, {"origins": [APP]}).options("/crash", headers={"Origin": EVIL, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_error_responses_carry_the_headers_too(services: ServiceMaker) -> None:
    app = client(services, {"origins": [APP]})
    for response in (app.get("/no/such/route", headers={"Origin": APP}), app.post("/crash", headers={"Origin": APP})):
        assert response.status_code in (404, 500)
        assert response.headers["Access-Control-Allow-Origin"] == APP


def test_credentials_methods_headers_and_max_age_are_configurable(services: ServiceMaker) -> None:
    cors = {"origins": [APP], "credentials": True, "methods": ["GET", "post"], "headers": ["X-Api-Version"], "max_age": 60, "expose_headers": []}
    app = client(services, cors)
    simple = app.get("/things/1", headers={"Origin": APP})
    assert cors_headers(simple) == {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Credentials": "true"}
    headers = cors_headers(app.options("/crash", headers={"Origin": APP, **PREFLIGHT}))
    assert headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert headers["Access-Control-Allow-Headers"] == "X-Api-Version"
    assert headers["Access-Control-Max-Age"] == "60"
    assert headers["Access-Control-Allow-Credentials"] == "true"


def test_subdomain_wildcard_and_any_origin(services: ServiceMaker) -> None:
    app = client(services, {"origins": ["https://*.example.com"]})
    assert app.get("/things/1", headers={"Origin": "https://a.b.example.com"}).headers["Access-Control-Allow-Origin"] == "https://a.b.example.com"
    for origin in ("https://example.com", "https://example.com.evil.net", "http://a.example.com", "https://a.example.com:444"):
        assert "Access-Control-Allow-Origin" not in app.get("/things/1", headers={"Origin": origin}).headers, origin
    anyone = client(services, {"origins": ["*"]})
    assert anyone.get("/things/1", headers={"Origin": EVIL}).headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"origins": ["https://app.example.com/"]}, r"cors\.origins: 'https://app.example.com/' is not an origin"),
        ({"origins": ["app.example.com"]}, r"cors\.origins: 'app.example.com' is not an origin"),
        ({"origins": []}, r"cors\.origins must be a non-empty list"),
        ({"origin": [APP]}, r"unknown key in cors: origin \(known: origins, "),
        ({"origins": ["*"], "credentials": True}, r"cors\.credentials cannot be true with origins \['\*'\]"),
        ({"origins": [APP], "methods": ["FETCH"]}, r"cors\.methods: unknown HTTP method FETCH"),
        ({"origins": [APP], "max_age": "1h"}, r"cors\.max_age must be a number of seconds"),
        (["https://app.example.com"], r"cors must be a mapping"),
    ],
)
def test_bad_cors_settings_stop_start_up(services: ServiceMaker, cors: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=r"macaron\.yaml: " + message):
        client(services, cors)
