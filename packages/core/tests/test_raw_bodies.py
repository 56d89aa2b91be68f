"""Request bodies that are neither JSON nor forms: text arrives as a str, anything else as bytes."""

from __future__ import annotations

from typing import Any

import pytest

from service_maker import ServiceMaker

SPEC = """
openapi: 3.0.3
info: {title: raw, version: '1'}
paths:
  /notes:
    post:
      operationId: HANDLERS.note
      requestBody:
        required: true
        content:
          text/plain: {schema: {type: string, maxLength: 10, pattern: '^[^0-9]+$'}}
      responses:
        '200': {description: ok, content: {application/json: {schema: {type: object}}}}
  /images:
    put:
      operationId: HANDLERS.image
      requestBody:
        content:
          image/*: {schema: {type: string, format: binary, maxLength: 8}}
          application/octet-stream: {schema: {type: string, format: binary}}
      responses:
        '200': {description: ok, content: {application/json: {schema: {type: object}}}}
  /papers:
    post:
      operationId: HANDLERS.paper
      requestBody:
        required: true
        content:
          application/json: {schema: {type: object, properties: {title: {type: string}}, required: [title]}}
          application/xml: {schema: {type: string}}
      responses:
        '200': {description: ok, content: {application/json: {schema: {type: object}}}}
"""

HANDLERS = """
def note(body):
    return {"type": type(body).__name__, "body": body}

def image(body):
    return {"type": type(body).__name__, "size": None if body is None else len(body)}

def paper(body):
    if isinstance(body, bytes):
        return {"type": "bytes", "title": body.decode()}
    return {"type": "model", "title": body.title}
"""


@pytest.fixture
def client(services: ServiceMaker) -> Any:
    return services.client(SPEC, HANDLERS, header=False)


def fields(response: Any) -> dict[str, str]:
    return {problem["field"]: problem["message"] for problem in response.get_json()["errors"]}


def test_text_body_arrives_as_str_decoded_with_its_charset(client: Any) -> None:
    response = client.post("/notes", data="héllo".encode("latin-1"), content_type="text/plain; charset=latin-1")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"type": "str", "body": "héllo"}
    assert client.post("/notes", data=b"hello you", content_type="text/plain").get_json() == {"type": "str", "body": "hello you"}


def test_text_body_is_checked_against_its_schema_and_charset(client: Any) -> None:
    response = client.post("/notes", data=b"far too long a note 2", content_type="text/plain")
    assert response.status_code == 400
    assert "/body" in fields(response)
    response = client.post("/notes", data=b"\xff\xfe", content_type="text/plain")
    assert response.status_code == 400
    assert fields(response) == {"/body": "is not valid utf-8 text"}
    response = client.post("/notes", data=b"", content_type="text/plain")
    assert response.status_code == 400
    assert fields(response) == {"/body": "a request body is required"}


def test_a_type_not_declared_is_a_415_naming_the_accepted_ones(client: Any) -> None:
    response = client.post("/notes", data=b"{}", content_type="application/json")
    assert response.status_code == 415
    body = response.get_json()
    assert body["error"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "text/plain" in body["error_description"]


def test_binary_body_arrives_as_bytes_wildcards_honoured(client: Any) -> None:
    response = client.put("/images", data=b"\x89PNG\x00", content_type="image/png")
    assert response.get_json() == {"type": "bytes", "size": 5}
    response = client.put("/images", data=b"\x00" * 20, content_type="application/octet-stream")
    assert response.get_json() == {"type": "bytes", "size": 20}
    response = client.put("/images", data=b"\x00" * 9, content_type="image/gif")
    assert response.status_code == 400
    assert fields(response) == {"/body": "is longer than 8 bytes"}
    assert client.put("/images", data=b"x", content_type="text/plain").status_code == 415
    assert client.put("/images").get_json() == {"type": "NoneType", "size": None}  # optional body


def test_json_or_another_type_chosen_by_content_type(client: Any) -> None:
    assert client.post("/papers", json={"title": "t"}).get_json() == {"type": "model", "title": "t"}
    assert client.post("/papers", json={}).status_code == 400
    response = client.post("/papers", data=b"<doc/>", content_type="application/xml")
    assert response.get_json() == {"type": "bytes", "title": "<doc/>"}
    assert client.post("/papers", data=b"", content_type="application/json").status_code == 400


SWAGGER = """
paths:
  /upload:
    post:
      operationId: HANDLERS.upload
      consumes: [application/octet-stream, text/csv]
      parameters:
        - {name: data, in: body, required: true, schema: {type: string, format: binary}}
      responses:
        200: {description: ok, schema: {type: object}}
"""


def test_swagger2_string_body_consumed_as_other_types(services: ServiceMaker) -> None:
    client = services.client(SWAGGER, "def upload(body):\n    return {'type': type(body).__name__, 'body': body if isinstance(body, str) else body.hex()}\n")
    assert client.post("/upload", data=b"\x01\x02", content_type="application/octet-stream").get_json() == {"type": "bytes", "body": "0102"}
    assert client.post("/upload", data=b"a,b", content_type="text/csv").get_json() == {"type": "str", "body": "a,b"}
    assert client.post("/upload", json={"a": 1}).status_code == 415
    assert client.post("/upload").status_code == 400


def test_the_client_sends_text_and_bytes_with_their_content_type(services: ServiceMaker) -> None:
    from macaron import apis
    from macaron.client import BadClientRequest

    root = services.write(SPEC, HANDLERS, header=False, config={"clients": {"x": {"in_process": True, "serve": True}}})
    services.build(root)
    client: Any = apis.x.client
    assert client.note("hello") == {"type": "str", "body": "hello"}
    assert client.image(b"\x89PNG", _content_type="image/png") == {"type": "bytes", "size": 4}
    assert client.image(b"\x00" * 20, _content_type="application/octet-stream") == {"type": "bytes", "size": 20}
    assert client.paper({"title": "t"}) == {"type": "model", "title": "t"}
    assert client.paper(b"<doc/>") == {"type": "bytes", "title": "<doc/>"}
    with pytest.raises(BadClientRequest, match="/body"):
        client.note("far too long a note")
    with pytest.raises(BadClientRequest, match="a request body is required"):
        client.note()
    with pytest.raises(TypeError, match="_content_type"):
        client.image(b"\x89PNG")  # image/* names no type to send
    with pytest.raises(TypeError, match="a str"):
        client.note(b"bytes")
