"""JWT authentication as a caller sees it: real tokens (HS256, RS256, ES256) against small services."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, g
from flask.testing import FlaskClient

from macaron import auth as auth_module
from macaron import config as config_module
from macaron import context, hookimpl
from macaron.auth import generate_token
from macaron.config import ConfigError
from macaron.spec import SpecError
from servers import gunicorn_service
from service_maker import ServiceMaker

SECRET = "test-secret-of-a-decent-length-0123456789"
AUDIENCE = "test-audience"
ISSUER = "test-issuer"
HS_CONFIG = {"jwt_secret": SECRET, "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}

HANDLERS = """
from macaron.auth import get_token, get_token_claims, get_userid
from macaron.context import get_request_id

def me():
    return {"user": get_userid(), "claims": get_token_claims(), "token": get_token(), "request_id": get_request_id()}
"""

RESPONSE = """
      responses:
        200:
          description: who called
          schema: {type: object, additionalProperties: true}
"""

SPEC = f"""
securityDefinitions:
  jwt: {{type: apiKey, in: header, name: Authorization}}
paths:
  /me:
    get:
      operationId: me
      x-bind-server: HANDLERS.me
      security: [{{jwt: []}}]
{RESPONSE}
  /decorated:
    get:
      operationId: decorated
      x-bind-server: HANDLERS.me
      x-decorate-server: macaron.auth.requires_auth
{RESPONSE}
  /maybe:
    get:
      operationId: maybe
      x-bind-server: HANDLERS.me
      security: [{{jwt: []}}, {{}}]
{RESPONSE}
  /open:
    get:
      operationId: open
      x-bind-server: HANDLERS.me
{RESPONSE}
  /admin:
    get:
      operationId: admin
      x-bind-server: HANDLERS.me
      security: [{{jwt: [admin]}}]
{RESPONSE}
"""


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600, "aud": AUDIENCE, "iss": ISSUER}
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def hs256(secret: str = SECRET, **changes: Any) -> str:
    return jwt.encode(claims(**changes), secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A token built by hand, as an attacker would: PyJWT refuses to make these."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def error_of(response: Any) -> str:
    assert response.status_code == 401, (response.status_code, response.json)
    code: str = response.json["error"]
    return code


@pytest.fixture
def client(services: ServiceMaker) -> FlaskClient:
    return services.client(SPEC, HANDLERS, config=HS_CONFIG)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any, private: bool) -> str:
    if private:
        return str(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    return str(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


# -- the 401 codes ---------------------------------------------------------------------


def test_valid_hs256_token_reaches_the_handler_with_the_callers_identity(client: FlaskClient) -> None:
    token = hs256(role="admin")
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 200, response.json
    assert response.json["user"] == "alice"
    assert response.json["claims"]["role"] == "admin"
    assert response.json["claims"]["aud"] == AUDIENCE
    assert response.json["token"] == token


def test_no_authorization_header_is_401_authorization_header_missing_with_a_challenge(client: FlaskClient) -> None:
    response = client.get("/me")
    assert error_of(response) == "AUTHORIZATION_HEADER_MISSING"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["error_id"]


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"])
def test_an_authorization_header_that_is_not_bearer_token_is_token_invalid(client: FlaskClient, header: str) -> None:
    response = client.get("/me", headers={"Authorization": header})
    assert error_of(response) == "TOKEN_INVALID"
    assert "Bearer <token>" in response.json["error_description"]


def test_a_token_signed_with_another_secret_or_garbage_is_token_invalid(client: FlaskClient) -> None:
    response = client.get("/me", headers=bearer(hs256(secret="another-secret-of-a-decent-length-98765")))
    assert error_of(response) == "TOKEN_INVALID"
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert error_of(client.get("/me", headers=bearer("not.a.jwt"))) == "TOKEN_INVALID"


def test_an_expired_token_is_token_expired(client: FlaskClient) -> None:
    now = int(time.time())
    response = client.get("/me", headers=bearer(hs256(iat=now - 3600, nbf=now - 3600, exp=now - 60)))
    assert error_of(response) == "TOKEN_EXPIRED"
    assert "expired" in response.headers["WWW-Authenticate"]


def test_wrong_or_missing_audience_is_token_wrong_audience(client: FlaskClient) -> None:
    response = client.get("/me", headers=bearer(hs256(aud="another-service")))
    assert error_of(response) == "TOKEN_WRONG_AUDIENCE"
    assert AUDIENCE in response.json["error_description"]
    assert error_of(client.get("/me", headers=bearer(hs256(aud=None)))) == "TOKEN_WRONG_AUDIENCE"


def test_wrong_or_missing_issuer_is_token_wrong_issuer(client: FlaskClient) -> None:
    assert error_of(client.get("/me", headers=bearer(hs256(iss="https://evil.example")))) == "TOKEN_WRONG_ISSUER"
    assert error_of(client.get("/me", headers=bearer(hs256(iss=None)))) == "TOKEN_WRONG_ISSUER"


def test_a_token_not_valid_yet_is_token_not_yet_valid(client: FlaskClient) -> None:
    now = int(time.time())
    assert error_of(client.get("/me", headers=bearer(hs256(nbf=now + 120)))) == "TOKEN_NOT_YET_VALID"
    assert error_of(client.get("/me", headers=bearer(hs256(iat=now + 120, nbf=None)))) == "TOKEN_NOT_YET_VALID"


def test_a_token_without_subject_or_expiry_is_token_invalid(client: FlaskClient) -> None:
    assert error_of(client.get("/me", headers=bearer(hs256(sub=None)))) == "TOKEN_INVALID"
    assert error_of(client.get("/me", headers=bearer(hs256(exp=None)))) == "TOKEN_INVALID"


def test_a_token_verified_once_is_still_refused_when_it_expires(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    token = hs256(exp=int(now) + 60)
    for _ in range(2):  # the second call finds the token already verified
        assert client.get("/me", headers=bearer(token)).json["user"] == "alice"
    monkeypatch.setattr(auth_module, "_now", lambda: now + 60 + 11)  # past exp and the 10 s leeway
    assert error_of(client.get("/me", headers=bearer(token))) == "TOKEN_EXPIRED"


def test_the_leeway_lets_small_clock_skews_through_and_is_configurable(services: ServiceMaker) -> None:
    now = int(time.time())
    just_expired = hs256(iat=now - 600, nbf=now - 600, exp=now - 4)
    almost_valid = hs256(nbf=now + 4)
    default = services.client(SPEC, HANDLERS, config=HS_CONFIG)  # default leeway: 10 s
    assert default.get("/me", headers=bearer(just_expired)).status_code == 200
    assert default.get("/me", headers=bearer(almost_valid)).status_code == 200
    strict = services.client(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_leeway": 0})
    assert error_of(strict.get("/me", headers=bearer(just_expired))) == "TOKEN_EXPIRED"
    assert error_of(strict.get("/me", headers=bearer(almost_valid))) == "TOKEN_NOT_YET_VALID"


# -- attacks ---------------------------------------------------------------------------


def test_an_unsigned_alg_none_token_is_rejected(client: FlaskClient) -> None:
    for alg in ("none", "None", "NONE"):
        token = handmade({"alg": alg, "typ": "JWT"}, claims())
        response = client.get("/me", headers=bearer(token))
        assert error_of(response) == "TOKEN_INVALID", alg


def test_algorithm_confusion_hs256_signed_with_the_rsa_public_key_is_rejected(services: ServiceMaker, rsa_key: rsa.RSAPrivateKey) -> None:
    public_pem = pem(rsa_key, private=False)
    root = services.write(
        SPEC,
        HANDLERS,
        config={"jwt_algorithm": "RS256", "jwt_public_key": "keys/public.pem", "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER},
        files={"keys/public.pem": public_pem},
    )
    client = services.build(root).test_client()
    genuine = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert client.get("/me", headers=bearer(genuine)).status_code == 200
    # The attack: the public key is public, so an attacker can HMAC with it and hope the server does too.
    forged = handmade(
        {"alg": "HS256", "typ": "JWT"}, claims(sub="mallory"), lambda data: hmac.new(public_pem.encode(), data, hashlib.sha256).digest()
    )
    response = client.get("/me", headers=bearer(forged))
    assert error_of(response) == "TOKEN_INVALID"
    assert "RS256" in response.json["error_description"]


# -- asymmetric keys -------------------------------------------------------------------


def test_rs256_with_key_files_signs_with_generate_token_and_checks(services: ServiceMaker, rsa_key: rsa.RSAPrivateKey) -> None:
    root = services.write(
        SPEC,
        HANDLERS,
        config={
            "jwt_algorithm": "RS256",
            "jwt_public_key": "public.pem",
            "jwt_private_key": "PRIVATE_KEY",
            "env_secrets": ["PRIVATE_KEY"],
            "jwt_audience": AUDIENCE,
            "jwt_issuer": ISSUER,
        },
        files={"public.pem": pem(rsa_key, private=False)},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRIVATE_KEY", pem(rsa_key, private=True))  # PEM text straight from a secret
        app = services.build(root)
    with app.app_context():
        token = generate_token("bob", data={"plan": "pro"})
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    response = app.test_client().get("/me", headers=bearer(token))
    assert response.status_code == 200, response.json
    assert response.json["user"] == "bob"
    assert response.json["claims"]["plan"] == "pro"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert error_of(app.test_client().get("/me", headers=bearer(jwt.encode(claims(), other_key, algorithm="RS256")))) == "TOKEN_INVALID"


def test_es256_with_a_jwks_file_picks_the_key_by_kid(services: ServiceMaker) -> None:
    current, retired = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": []}
    for kid, key in (("2024", retired), ("2025", current)):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwks["keys"].append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
    jwks["keys"].append({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"})  # not for signatures: skipped
    root = services.write(
        SPEC,
        HANDLERS,
        config={"jwt_algorithm": "ES256", "jwt_jwks_file": "jwks.json", "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER},
        files={"jwks.json": json.dumps(jwks)},
    )
    client = services.build(root).test_client()
    for kid, key in (("2025", current), ("2024", retired)):
        token = jwt.encode(claims(sub=f"user-{kid}"), key, algorithm="ES256", headers={"kid": kid})
        response = client.get("/me", headers=bearer(token))
        assert response.status_code == 200, response.json
        assert response.json["user"] == f"user-{kid}"
    signed_by_retired_as_current = jwt.encode(claims(), retired, algorithm="ES256", headers={"kid": "2025"})
    assert error_of(client.get("/me", headers=bearer(signed_by_retired_as_current))) == "TOKEN_INVALID"
    unknown = client.get("/me", headers=bearer(jwt.encode(claims(), current, algorithm="ES256", headers={"kid": "1999"})))
    assert error_of(unknown) == "TOKEN_INVALID"
    assert "1999" in unknown.json["error_description"]


# -- where the token comes from --------------------------------------------------------


def test_the_token_cookie_is_read_only_when_jwt_cookie_is_on(services: ServiceMaker) -> None:
    token = hs256()
    off = services.client(SPEC, HANDLERS, config=HS_CONFIG)
    off.set_cookie("token", f"Bearer%20{token}")
    response = off.get("/me")
    assert error_of(response) == "AUTHORIZATION_HEADER_MISSING"
    assert "jwt_cookie is off" in response.json["error_description"]

    on = services.client(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_cookie": True})
    on.set_cookie("token", f"Bearer%20{token}")
    response = on.get("/me")
    assert response.status_code == 200, response.json
    assert response.json["user"] == "alice"
    on.set_cookie("token", token)  # no "Bearer " in front
    assert error_of(on.get("/me")) == "TOKEN_INVALID"


# -- decorators and securityDefinitions --------------------------------------------------


def test_x_decorate_server_requires_auth_protects_an_operation_without_security(client: FlaskClient) -> None:
    assert error_of(client.get("/decorated")) == "AUTHORIZATION_HEADER_MISSING"
    response = client.get("/decorated", headers=bearer(hs256(sub="carol")))
    assert response.status_code == 200
    assert response.json["user"] == "carol"


def test_security_with_an_anonymous_alternative_makes_the_token_optional(client: FlaskClient) -> None:
    anonymous = client.get("/maybe")
    assert anonymous.status_code == 200
    assert anonymous.json["user"] is None
    assert client.get("/maybe", headers=bearer(hs256(sub="dave"))).json["user"] == "dave"
    assert error_of(client.get("/maybe", headers=bearer(hs256(aud="elsewhere")))) == "TOKEN_WRONG_AUDIENCE"


def test_global_security_applies_to_every_operation_unless_one_opts_out(services: ServiceMaker) -> None:
    spec = f"""
security: [{{bearer_jwt: []}}]
securityDefinitions:
  bearer_jwt: {{type: apiKey, in: header, name: authorization, x-macaron-auth: jwt}}
paths:
  /me:
    get:
      x-bind-server: HANDLERS.me
{RESPONSE}
  /public:
    get:
      x-bind-server: HANDLERS.me
      security: []
{RESPONSE}
"""
    client = services.client(spec, HANDLERS, config=HS_CONFIG)
    assert error_of(client.get("/me")) == "AUTHORIZATION_HEADER_MISSING"
    assert client.get("/me", headers=bearer(hs256())).status_code == 200
    assert client.get("/public").status_code == 200


def test_a_scheme_marked_external_is_left_to_the_service(services: ServiceMaker) -> None:
    spec = f"""
securityDefinitions:
  partner_key: {{type: apiKey, in: header, name: X-Partner-Key, x-macaron-auth: external}}
paths:
  /partner:
    get:
      x-bind-server: HANDLERS.me
      security: [{{partner_key: []}}]
{RESPONSE}
"""
    response = services.client(spec, HANDLERS, config=HS_CONFIG).get("/partner")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("definitions", "security", "message"),
    [
        ("jwt: {type: apiKey, in: header, name: Authorization}", "[{jtw: []}]", "scheme 'jtw', which the spec does not define"),
        ("basic: {type: basic}", "[{basic: []}]", "macaron cannot check security scheme 'basic'"),
        (
            "{jwt: {type: apiKey, in: header, name: Authorization}, other: {type: basic, x-macaron-auth: external}}",
            "[{jwt: []}, {other: []}]",
            "alternatives",
        ),
    ],
)
def test_security_macaron_cannot_enforce_stops_start_up(services: ServiceMaker, definitions: str, security: str, message: str) -> None:
    definitions_yaml = f"securityDefinitions: {definitions}" if definitions.startswith("{") else f"securityDefinitions:\n  {definitions}"
    spec = f"""
{definitions_yaml}
paths:
  /x:
    get:
      operationId: guarded
      x-bind-server: HANDLERS.me
      security: {security}
{RESPONSE}
"""
    with pytest.raises(SpecError) as caught:
        services.app(spec, HANDLERS, config=HS_CONFIG)
    assert message in str(caught.value)
    assert "x.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "jwt_secret is required with jwt_algorithm HS256"),
        ({"jwt_secret": "JWT_SECRET"}, "list JWT_SECRET in env_secrets"),
        ({"jwt_secret": SECRET, "jwt_algorithm": "none"}, "unsigned tokens"),
        ({"jwt_secret": SECRET, "jwt_public_key": "pub.pem"}, "set jwt_algorithm to RS256"),
        ({"jwt_algorithm": "RS256", "jwt_public_key": "missing.pem"}, "missing.pem"),
        ({"jwt_secret": SECRET, "jwt_leeway": "soon"}, "jwt_leeway"),
    ],
)
def test_jwt_settings_that_cannot_work_stop_start_up_naming_the_file(services: ServiceMaker, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        services.app(SPEC, HANDLERS, config=config)
    assert message in str(caught.value)
    assert "macaron.yaml" in str(caught.value)
    assert "operation me" in str(caught.value)


def test_a_key_of_the_wrong_kind_stops_start_up(services: ServiceMaker, rsa_key: rsa.RSAPrivateKey) -> None:
    cases = [
        ({"jwt_algorithm": "ES256", "jwt_public_key": pem(rsa_key, private=False)}, "the PEM text is not an EC key usable with ES256"),
        ({"jwt_algorithm": "RS256", "jwt_public_key": pem(rsa_key, private=True)}, "the PEM text must hold a public key"),
        (
            {"jwt_algorithm": "RS256", "jwt_public_key": "pub.pem", "jwt_jwks_file": "jwks.json"},
            "exactly one of jwt_public_key and jwt_jwks_file",
        ),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            services.app(SPEC, HANDLERS, config=config)


# -- generate_token, identity in handlers ------------------------------------------------


def test_generate_token_sets_the_registered_claims_and_leaves_data_alone(services: ServiceMaker) -> None:
    app = services.app(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_token_timeout": 3600})
    data = {"role": "admin"}
    with app.app_context():
        token = generate_token(42, data=data)
        short = generate_token("x", expire_in=5)
        with pytest.raises(ValueError, match="sub"):
            generate_token("x", data={"sub": "someone-else"})
    assert data == {"role": "admin"}
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert decoded["sub"] == "42"
    assert decoded["role"] == "admin"
    assert decoded["exp"] - decoded["iat"] == 3600
    assert decoded["nbf"] == decoded["iat"]
    short_claims = jwt.decode(short, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert short_claims["exp"] - short_claims["iat"] == 5
    response = app.test_client().get("/me", headers=bearer(token))
    assert response.json["user"] == "42"


REVOCATIONS = """
import os
from pathlib import Path

def is_revoked(claims):
    # A denylist of token ids, as a service would keep in Redis or its database.
    return claims["jti"] in Path(os.environ["REVOKED_FILE"]).read_text().split()
"""


def test_a_revoked_token_is_refused_even_after_it_was_accepted(
    services: ServiceMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    denylist = tmp_path / "revoked.txt"
    denylist.write_text("")
    monkeypatch.setenv("REVOKED_FILE", str(denylist))
    app = services.app(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_revoked": "revocations.is_revoked"}, files={"revocations.py": REVOCATIONS})
    client = app.test_client()
    with app.app_context():
        kept, dropped = generate_token("alice"), generate_token("alice")
    jti = jwt.decode(dropped, SECRET, algorithms=["HS256"], audience=AUDIENCE)["jti"]
    assert jti != jwt.decode(kept, SECRET, algorithms=["HS256"], audience=AUDIENCE)["jti"]
    assert client.get("/me", headers=bearer(dropped)).status_code == 200  # verified, and now in the cache
    denylist.write_text(jti + "\n")
    refused = client.get("/me", headers=bearer(dropped))
    assert error_of(refused) == "TOKEN_REVOKED"
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="The token was revoked"'
    assert client.get("/me", headers=bearer(kept)).status_code == 200
    assert error_of(client.get("/maybe", headers=bearer(dropped))) == "TOKEN_REVOKED"  # optional auth: a token sent is checked
    assert client.get("/maybe").status_code == 200
    denylist.unlink()  # the check cannot answer: the token does not get through
    failed = client.get("/me", headers=bearer(kept))
    assert failed.status_code == 500 and failed.json["error"] == "SERVER_ERROR"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("revocations.no_such_check", "jwt_revoked 'revocations.no_such_check': module revocations has no function 'no_such_check'"),
        ("no_such_module.check", "jwt_revoked 'no_such_module.check': no module named 'no_such_module'"),
        ("check", "jwt_revoked 'check' must be a dotted path"),
    ],
)
def test_a_jwt_revoked_that_cannot_be_called_stops_start_up(services: ServiceMaker, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        services.app(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_revoked": value}, files={"revocations.py": REVOCATIONS})


def test_generate_token_gives_each_token_its_own_id(services: ServiceMaker) -> None:
    app = services.app(SPEC, HANDLERS, config=HS_CONFIG)
    with app.app_context():
        ids = {jwt.decode(generate_token("bob"), SECRET, algorithms=["HS256"], audience=AUDIENCE)["jti"] for _ in range(50)}
        with pytest.raises(ValueError, match="jti"):
            generate_token("bob", data={"jti": "mine"})
    assert len(ids) == 50


class RequestContextPlugin:
    """What the request-id middleware does: a fresh context per request, ended at teardown."""

    seen_after: list[str | None]

    def __init__(self) -> None:
        self.seen_after = []

    @hookimpl
    def startup(self, app: Flask) -> None:
        @app.before_request
        def begin() -> None:
            g.context_token = context.begin(context.CallContext(request_id="req-1"))

        @app.after_request
        def record(response: Any) -> Any:
            self.seen_after.append(context.get_userid())
            return response

        @app.teardown_request
        def end(exc: BaseException | None) -> None:
            context.end(g.context_token)


@pytest.mark.parametrize("contexts", ["begun-per-request", "never-begun", "built-ins"])
def test_identity_does_not_leak_to_the_next_request_on_the_same_thread(
    services: ServiceMaker, monkeypatch: pytest.MonkeyPatch, contexts: str
) -> None:
    plugins: tuple[Any, ...] = ()
    if contexts != "built-ins":
        # Without the built-in request middleware, whether anything begins a context per request is up to the test.
        monkeypatch.setenv("MACARON_DISABLE_PLUGINS", "requests")
        plugins = (RequestContextPlugin(),) if contexts == "begun-per-request" else ()
    client = services.app(SPEC, HANDLERS, config=HS_CONFIG, plugins=plugins).test_client()
    first = client.get("/me", headers=bearer(hs256(sub="erin"))).json
    assert first["user"] == "erin"
    if contexts != "built-ins":
        assert (first["request_id"] is not None) is (contexts == "begun-per-request")
    after = client.get("/open")
    assert {key: after.json[key] for key in ("user", "claims", "token")} == {"user": None, "claims": {}, "token": None}
    assert client.get("/maybe").json["user"] is None
    assert context.get_userid() is None


def test_with_a_per_request_context_the_user_id_lasts_until_the_request_ends(services: ServiceMaker) -> None:
    plugin = RequestContextPlugin()
    client = services.app(SPEC, HANDLERS, config=HS_CONFIG, plugins=(plugin,)).test_client()
    assert client.get("/me", headers=bearer(hs256(sub="frank"))).json["user"] == "frank"
    assert client.get("/open").json["user"] is None
    assert plugin.seen_after == ["frank", None]  # an access log line written after the handler sees the user


# -- /auth/version ---------------------------------------------------------------------


def test_auth_version_answers_like_version_to_an_authenticated_caller_only(client: FlaskClient) -> None:
    assert error_of(client.get("/auth/version")) == "AUTHORIZATION_HEADER_MISSING"
    assert error_of(client.get("/auth/version", headers=bearer(hs256(iss="elsewhere")))) == "TOKEN_WRONG_ISSUER"
    response = client.get("/auth/version", headers=bearer(hs256()))
    assert response.status_code == 200
    assert response.json == client.get("/version").json
    assert "macaron_auth" not in response.json["apis"]


def test_a_service_without_jwt_settings_has_no_auth_version(services: ServiceMaker) -> None:
    client = services.client("paths: {}", "")
    assert client.get("/auth/version").status_code == 404
    assert client.get("/version").status_code == 200


# -- over real gunicorn ----------------------------------------------------------------


@pytest.fixture
def no_global_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_current", None)  # as in a fresh process: no app created yet


def test_tokens_over_real_gunicorn(services: ServiceMaker, monkeypatch: pytest.MonkeyPatch, no_global_config: None) -> None:
    root: Path = services.write(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_secret": "JWT_SECRET", "env_secrets": ["JWT_SECRET"]})
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("MACARON_SERVICE", str(root))
    token = generate_token("grace")  # outside any app: get_config() loads the service from MACARON_SERVICE
    with gunicorn_service(root, {"JWT_SECRET": SECRET}) as url:
        missing = requests.get(f"{url}/auth/version", timeout=30)
        assert missing.status_code == 401
        assert missing.json()["error"] == "AUTHORIZATION_HEADER_MISSING"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert requests.get(f"{url}/auth/version", headers=bearer(token), timeout=30).json()["name"] == "test-service"
        with requests.Session() as session:  # one connection: the same worker thread serves every call
            assert session.get(f"{url}/me", headers=bearer(token), timeout=30).json()["user"] == "grace"
            assert session.get(f"{url}/open", timeout=30).json()["user"] is None
            expired = session.get(f"{url}/me", headers=bearer(hs256(exp=int(time.time()) - 60)), timeout=30)
            assert expired.json()["error"] == "TOKEN_EXPIRED"
            # Scopes (test_auth_scopes.py has the rules): the 403 and its challenge as they reach a client.
            lacking = session.get(f"{url}/admin", headers=bearer(token), timeout=30)
            assert (lacking.status_code, lacking.json()["error"]) == (403, "INSUFFICIENT_SCOPE")
            assert lacking.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'
            assert session.get(f"{url}/admin", headers=bearer(generate_token("grace", scopes=["admin"])), timeout=30).status_code == 200


# The forms a `token` cookie takes on the wire: as browsers and requests send it (a raw space, which
# werkzeug's cookie parser drops), URL-encoded, and quoted.
COOKIE_FORMS = {"raw": "Bearer {}", "encoded": "Bearer%20{}", "quoted": '"Bearer {}"'}


def _raw_get(url: str, path: str, cookie: str) -> tuple[int, dict[str, Any]]:
    """A GET sent byte for byte over a socket, so no client library re-encodes the Cookie header."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("form", list(COOKIE_FORMS))
def test_the_token_cookie_in_every_form_over_a_real_server(services: ServiceMaker, form: str) -> None:
    token = hs256(sub="dora")
    value = COOKIE_FORMS[form].format(token)
    on = services.write(SPEC, HANDLERS, config={**HS_CONFIG, "jwt_cookie": True})
    off = services.write(SPEC, HANDLERS, config=HS_CONFIG)
    with gunicorn_service(on) as url:
        answer = requests.get(f"{url}/me", cookies={"token": value}, timeout=30)
        assert answer.status_code == 200, answer.json()
        assert answer.json()["user"] == "dora"
        for cookie in (f"token={value}", f"theme=dark; token={value}; lang=en"):
            status, body = _raw_get(url, "/me", cookie)
            assert (status, body.get("user")) == (200, "dora"), (cookie, body)
        status, body = _raw_get(url, "/me", f"token={token}")  # no "Bearer " in front
        assert (status, body["error"]) == (401, "TOKEN_INVALID")
    with gunicorn_service(off) as url:
        answer = requests.get(f"{url}/me", cookies={"token": value}, timeout=30)
        assert answer.status_code == 401
        assert "jwt_cookie is off" in answer.json()["error_description"]
        status, body = _raw_get(url, "/me", f"theme=dark; token={value}")
        assert (status, body["error"]) == (401, "AUTHORIZATION_HEADER_MISSING")
        assert "jwt_cookie is off" in body["error_description"]
