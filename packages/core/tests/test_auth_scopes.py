"""OAuth2 scopes on macaron's JWT check, as a caller sees them: spec security with scopes, tokens with scope claims."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from macaron.auth import generate_token
from macaron.spec import SpecError
from service_maker import ServiceMaker

SECRET = "test-secret-of-a-decent-length-0123456789"
CONFIG = {"jwt_secret": SECRET}

HANDLERS = """
from macaron.auth import InsufficientScope, get_scopes, get_userid, requires_auth

def me():
    return {"user": get_userid(), "scopes": sorted(get_scopes())}

@requires_auth(scopes=["admin"])
def admin_only():
    return {"user": get_userid(), "scopes": sorted(get_scopes())}

def audit():
    if "audit" not in get_scopes():
        raise InsufficientScope("auditors only", scopes=["audit"])
    return {"user": get_userid(), "scopes": sorted(get_scopes())}
"""

RESPONSE = """
      responses:
        200:
          description: who called
          schema: {type: object, additionalProperties: true}
"""

# Swagger 2: an oauth2 scheme (a declared scopes map) that macaron checks as its JWT, next to a plain JWT scheme.
SWAGGER2 = f"""
securityDefinitions:
  jwt: {{type: apiKey, in: header, name: Authorization}}
  oauth:
    type: oauth2
    flow: implicit
    authorizationUrl: https://auth.example.com/authorize
    x-macaron-auth: jwt
    scopes:
      pets:read: read pets
      pets:write: change pets
      pets:admin: remove pets
      reports:read: read reports
      admin: everything
paths:
  /pets:
    get:
      operationId: list_pets
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:read]}}]
{RESPONSE}
    post:
      operationId: add_pet
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:write]}}]
{RESPONSE}
    delete:
      operationId: remove_pets
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:write, pets:admin]}}]
{RESPONSE}
  /reports:
    get:
      operationId: reports
      x-bind-server: HANDLERS.me
      security: [{{oauth: [reports:read]}}, {{oauth: [admin]}}]
{RESPONSE}
  /catalog:
    get:
      operationId: catalog
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:read]}}, {{}}]
{RESPONSE}
  /any-token:
    get:
      operationId: any_token
      x-bind-server: HANDLERS.me
      security: [{{oauth: [admin]}}, {{jwt: []}}]
{RESPONSE}
  /plain-jwt:
    get:
      operationId: plain_jwt
      x-bind-server: HANDLERS.me
      security: [{{jwt: [pets:read]}}]
{RESPONSE}
  /decorated:
    get:
      operationId: decorated
      x-bind-server: HANDLERS.me
      x-decorate-server: macaron.auth.requires_auth
      security: [{{oauth: [admin]}}]
{RESPONSE}
  /admin-only:
    get:
      operationId: admin_only
      x-bind-server: HANDLERS.admin_only
{RESPONSE}
  /audit:
    get:
      operationId: audit
      x-bind-server: HANDLERS.audit
      security: [{{jwt: []}}]
{RESPONSE}
"""

OPENAPI3_RESPONSE = """
      responses:
        '200':
          description: who called
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
"""

# OpenAPI 3: scopes declared per flow, and an http bearer scheme, which declares none.
OPENAPI3 = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
components:
  securitySchemes:
    bearer: {{type: http, scheme: bearer, bearerFormat: JWT}}
    oauth:
      type: oauth2
      x-macaron-auth: jwt
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: {{pets:read: read pets}}
        authorizationCode:
          authorizationUrl: https://auth.example.com/authorize
          tokenUrl: https://auth.example.com/token
          scopes: {{pets:write: change pets}}
paths:
  /pets:
    get:
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:read]}}]
{OPENAPI3_RESPONSE}
    post:
      x-bind-server: HANDLERS.me
      security: [{{oauth: [pets:read, pets:write]}}]
{OPENAPI3_RESPONSE}
  /staff:
    get:
      x-bind-server: HANDLERS.me
      security: [{{bearer: [staff]}}]
{OPENAPI3_RESPONSE}
"""


def token(**claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def with_scope(scope: Any) -> dict[str, str]:
    return bearer(token(scope=scope))


def refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 403, (response.status_code, response.json)
    assert response.json["error"] == "INSUFFICIENT_SCOPE"
    assert response.json["status"] == 403
    assert response.json["error_id"]
    body: dict[str, Any] = response.json
    return body


@pytest.fixture
def client(services: ServiceMaker) -> FlaskClient:
    return services.client(SWAGGER2, HANDLERS, config=CONFIG)


# -- one alternative --------------------------------------------------------------------


def test_a_token_with_the_scope_passes_and_the_handler_reads_its_scopes(client: FlaskClient) -> None:
    response = client.get("/pets", headers=with_scope("pets:read pets:write"))
    assert response.status_code == 200, response.json
    assert response.json == {"user": "alice", "scopes": ["pets:read", "pets:write"]}


def test_a_valid_token_without_the_scope_is_403_insufficient_scope_naming_it(client: FlaskClient) -> None:
    response = client.post("/pets", headers=with_scope("pets:read"))
    description = refused(response)["error_description"]
    assert "'pets:write'" in description
    assert "the token's scopes: pets:read" in description
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="pets:write"'
    no_scope_at_all = refused(client.get("/pets", headers=bearer(token())))
    assert "'pets:read'" in no_scope_at_all["error_description"]
    assert "the token's scopes: none" in no_scope_at_all["error_description"]


def test_every_scope_of_the_alternative_is_needed(client: FlaskClient) -> None:
    response = client.delete("/pets", headers=with_scope("pets:write"))
    description = refused(response)["error_description"]
    assert "'pets:admin'" in description
    assert "'pets:write'" not in description  # the token has it: only what is missing is named
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="pets:admin pets:write"'
    assert client.delete("/pets", headers=with_scope("pets:admin pets:write")).status_code == 200


def test_no_token_or_a_bad_token_is_still_401(client: FlaskClient) -> None:
    missing = client.post("/pets")
    assert missing.status_code == 401
    assert missing.json["error"] == "AUTHORIZATION_HEADER_MISSING"
    forged = client.post("/pets", headers=bearer(jwt.encode({"sub": "x", "exp": int(time.time()) + 60, "scope": "pets:write"}, "another-secret-0123456789-abcdefghij")))
    assert forged.status_code == 401
    assert forged.json["error"] == "TOKEN_INVALID"
    expired = client.post("/pets", headers=bearer(token(scope="pets:write", exp=int(time.time()) - 60)))
    assert expired.json["error"] == "TOKEN_EXPIRED"


# -- where a token keeps its scopes -------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"scp": ["pets:write", "openid"]},  # Okta
        {"scp": "openid pets:write"},  # Azure AD
        {"scope": ["pets:write"]},  # a list where RFC 8693 says string: still read
    ],
)
def test_scopes_are_read_from_scp_as_a_list_or_a_string(client: FlaskClient, claims: dict[str, Any]) -> None:
    response = client.post("/pets", headers=bearer(token(**claims)))
    assert response.status_code == 200, response.json
    assert "pets:write" in response.json["scopes"]


def test_the_scope_claim_wins_over_scp(client: FlaskClient) -> None:
    both = bearer(token(scope="pets:read", scp=["pets:write"]))
    assert client.get("/pets", headers=both).json["scopes"] == ["pets:read"]
    refused(client.post("/pets", headers=both))


def test_a_scope_claim_of_another_shape_grants_nothing_and_says_so(client: FlaskClient) -> None:
    description = refused(client.get("/pets", headers=with_scope({"pets:read": True})))["error_description"]
    assert "its 'scope' claim is neither a space-separated string nor a list of strings" in description


# -- alternatives ------------------------------------------------------------------------


def test_a_token_passes_with_the_scopes_of_any_one_alternative(client: FlaskClient) -> None:
    assert client.get("/reports", headers=with_scope("reports:read")).status_code == 200
    assert client.get("/reports", headers=with_scope("admin")).status_code == 200
    response = client.get("/reports", headers=with_scope("pets:read"))
    assert "'reports:read', or 'admin'" in refused(response)["error_description"]
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="reports:read"'


def test_an_alternative_without_scopes_lets_any_valid_token_through(client: FlaskClient) -> None:
    assert client.get("/any-token", headers=bearer(token())).status_code == 200
    assert client.get("/any-token").json["error"] == "AUTHORIZATION_HEADER_MISSING"


def test_with_an_anonymous_alternative_a_token_sent_must_still_have_the_scopes(client: FlaskClient) -> None:
    anonymous = client.get("/catalog")
    assert anonymous.status_code == 200
    assert anonymous.json == {"user": None, "scopes": []}
    assert client.get("/catalog", headers=with_scope("pets:read")).json["user"] == "alice"
    refused(client.get("/catalog", headers=with_scope("pets:write")))


def test_scopes_on_a_plain_jwt_scheme_are_enforced_too(client: FlaskClient) -> None:
    # An apiKey scheme has no scopes map to check names against: any name is taken as written.
    assert client.get("/plain-jwt", headers=with_scope("pets:read")).status_code == 200
    refused(client.get("/plain-jwt", headers=bearer(token())))


def test_x_decorate_server_requires_auth_does_not_bypass_the_specs_scopes(client: FlaskClient) -> None:
    refused(client.get("/decorated", headers=bearer(token())))
    assert client.get("/decorated", headers=with_scope("admin")).status_code == 200
    assert client.get("/decorated").json["error"] == "AUTHORIZATION_HEADER_MISSING"


# -- in Python: requires_auth(scopes=...), generate_token(scopes=...) -------------------------


def test_requires_auth_with_scopes_protects_a_handler_without_spec_security(client: FlaskClient) -> None:
    assert client.get("/admin-only").json["error"] == "AUTHORIZATION_HEADER_MISSING"
    response = client.get("/admin-only", headers=with_scope("pets:read"))
    assert "'admin'" in refused(response)["error_description"]
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'
    assert client.get("/admin-only", headers=with_scope("admin")).json == {"user": "alice", "scopes": ["admin"]}


def test_a_handler_raising_insufficient_scope_gets_the_same_403(client: FlaskClient) -> None:
    response = client.get("/audit", headers=with_scope("pets:read"))
    assert refused(response)["error_description"] == "auditors only"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="audit"'
    assert client.get("/audit", headers=with_scope("audit")).status_code == 200


def test_generate_token_writes_scopes_as_the_scope_claim(services: ServiceMaker) -> None:
    app: Flask = services.app(SWAGGER2, HANDLERS, config=CONFIG)
    with app.app_context():
        scoped = generate_token("bob", scopes=["pets:write", "pets:read", "pets:write"])
        plain = generate_token("bob")
        empty = generate_token("bob", scopes=[])
        with pytest.raises(TypeError, match="not the string"):
            generate_token("bob", scopes="pets:write")
        with pytest.raises(ValueError, match="not a scope name"):
            generate_token("bob", scopes=["pets write"])
        with pytest.raises(ValueError, match="'scope' claim in data"):
            generate_token("bob", data={"scope": "admin"}, scopes=["pets:read"])
    assert jwt.decode(scoped, SECRET, algorithms=["HS256"])["scope"] == "pets:write pets:read"
    assert "scope" not in jwt.decode(plain, SECRET, algorithms=["HS256"])
    assert "scope" not in jwt.decode(empty, SECRET, algorithms=["HS256"])
    client = app.test_client()
    assert client.post("/pets", headers=bearer(scoped)).json == {"user": "bob", "scopes": ["pets:read", "pets:write"]}
    refused(client.post("/pets", headers=bearer(plain)))


# -- OpenAPI 3 ---------------------------------------------------------------------------


def test_openapi_3_oauth2_flows_and_http_bearer_scopes_are_enforced(services: ServiceMaker) -> None:
    client = services.client(OPENAPI3, HANDLERS, header=False, config=CONFIG)
    assert client.get("/pets", headers=with_scope("pets:read")).status_code == 200
    response = client.post("/pets", headers=with_scope("pets:read"))
    assert "'pets:write'" in refused(response)["error_description"]
    assert client.post("/pets", headers=bearer(token(scp=["pets:read", "pets:write"]))).status_code == 200
    assert client.get("/staff", headers=with_scope("staff")).status_code == 200
    refused(client.get("/staff", headers=with_scope("pets:read")))
    assert client.get("/staff").status_code == 401


# -- specs macaron refuses -----------------------------------------------------------------


def test_a_scope_the_oauth2_scheme_does_not_declare_stops_start_up(services: ServiceMaker) -> None:
    spec = SWAGGER2.replace("security: [{oauth: [pets:write]}]", "security: [{oauth: [pets:write, pets:delete]}]")
    with pytest.raises(SpecError) as caught:
        services.app(spec, HANDLERS, config=CONFIG)
    error = caught.value
    assert error.file.endswith("x.yaml")
    assert error.pointer == "/paths/~1pets/post"
    assert error.operation == "add_pet"
    assert "'pets:delete'" in error.reason
    assert "/securityDefinitions/oauth does not declare" in error.reason
    assert "declared: admin, pets:admin, pets:read, pets:write, reports:read" in error.reason


def test_openapi_3_scopes_are_declared_by_any_flow_of_the_scheme(services: ServiceMaker) -> None:
    spec = OPENAPI3.replace("security: [{oauth: [pets:read]}]", "security: [{oauth: [pets:read, pets:feed]}]")
    with pytest.raises(SpecError) as caught:
        services.app(spec, HANDLERS, header=False, config=CONFIG)
    assert caught.value.pointer == "/paths/~1pets/get"
    assert "'pets:feed'" in caught.value.reason
    assert "/components/securitySchemes/oauth does not declare (declared: pets:read, pets:write)" in caught.value.reason


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ("[{oauth: ['pets read']}]", "'pets read', which is not a scope name"),
        ('[{oauth: [''pets"read'']}]', "is not a scope name"),
    ],
)
def test_a_scope_that_is_no_scope_name_stops_start_up(services: ServiceMaker, security: str, message: str) -> None:
    spec = SWAGGER2.replace("security: [{oauth: [pets:read]}]", f"security: {security}")
    with pytest.raises(SpecError, match=message) as caught:
        services.app(spec, HANDLERS, config=CONFIG)
    assert caught.value.operation == "list_pets"


def test_an_empty_scopes_map_declares_no_scope(services: ServiceMaker) -> None:
    spec = SWAGGER2.replace("    scopes:\n      pets:read: read pets\n", "    scopes: {}\n    x-old-scopes:\n      pets:read: read pets\n")
    with pytest.raises(SpecError, match=r"declared: none"):
        services.app(spec, HANDLERS, config=CONFIG)


def test_scopes_of_an_external_scheme_are_left_to_whoever_checks_it(services: ServiceMaker) -> None:
    spec = f"""
securityDefinitions:
  partner:
    type: oauth2
    flow: application
    tokenUrl: https://partner.example.com/token
    scopes: {{orders: orders}}
    x-macaron-auth: external
paths:
  /orders:
    get:
      x-bind-server: HANDLERS.me
      security: [{{partner: [orders, not-declared]}}]
{RESPONSE}
"""
    assert services.client(spec, HANDLERS, config=CONFIG).get("/orders").status_code == 200
