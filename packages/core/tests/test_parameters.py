"""Every kind of parameter, as a user of a service sees it over the Flask test client."""

from __future__ import annotations

import io
from typing import Any

from service_maker import ServiceMaker

ECHO = """
from typing import Any

def echo(**kwargs: Any) -> Any:
    return {"got": {key: value for key, value in kwargs.items()}, "types": {key: type(value).__name__ for key, value in kwargs.items()}}
"""

ECHO_RESPONSE = """
      responses:
        200:
          description: what arrived
          schema:
            type: object
            additionalProperties: true
"""


def echo_spec(path: str, parameters: str, method: str = "get", extra: str = "") -> str:
    return f"""
paths:
  {path}:
    {method}:
      operationId: echo
      x-bind-server: HANDLERS.echo
{extra}      parameters:
{parameters}{ECHO_RESPONSE}"""


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    return {problem["field"]: problem["message"] for problem in body["errors"]}


# -- path -----------------------------------------------------------------------


def test_path_parameter_with_a_name_that_is_not_an_identifier_arrives_python_safe(services: ServiceMaker) -> None:
    client = services.client(
        echo_spec(
            "/items/{item-id}/parts/{class}",
            """\
        - {name: item-id, in: path, required: true, type: integer}
        - {name: class, in: path, required: true, type: string}
""",
        ),
        ECHO,
    )
    response = client.get("/items/42/parts/big")
    assert response.status_code == 200, response.json
    assert response.json["got"] == {"item_id": 42, "class_": "big"}
    assert response.json["types"]["item_id"] == "int"


def test_path_parameter_of_the_wrong_type_is_a_400_not_a_404(services: ServiceMaker) -> None:
    client = services.client(echo_spec("/items/{id}", "        - {name: id, in: path, required: true, type: integer}\n"), ECHO)
    response = client.get("/items/abc")
    assert response.status_code == 400
    assert response.json["error"] == "INVALID_PARAMETER"
    assert list(errors_of(response.json)) == ["/path/id"]


def test_number_and_boolean_path_parameters_are_coerced(services: ServiceMaker) -> None:
    client = services.client(
        echo_spec(
            "/n/{x}/{flag}",
            """\
        - {name: x, in: path, required: true, type: number}
        - {name: flag, in: path, required: true, type: boolean}
""",
        ),
        ECHO,
    )
    assert client.get("/n/2.5/true").json["got"] == {"x": 2.5, "flag": True}
    assert client.get("/n/3/false").json["got"] == {"x": 3, "flag": False}
    assert client.get("/n/x/maybe").status_code == 400


def test_numbers_json_cannot_carry_are_rejected(services: ServiceMaker) -> None:
    client = services.client(
        echo_spec(
            "/n",
            """\
        - {name: x, in: query, type: number}
        - {name: i, in: query, type: integer}
""",
        ),
        ECHO,
    )
    for query in ("x=nan", "x=inf", "x=-Infinity", "i=123456789012345678901234567890"):
        response = client.get("/n?" + query)
        assert response.status_code == 400, (query, response.json)
        assert response.json["error"] == "INVALID_PARAMETER"
    assert client.get("/n?x=123456789012345678901234567890&i=-5").json["got"] == {"x": 1.2345678901234568e29, "i": -5}
    assert client.get("/n?x=12345678901234567").json["got"]["x"] == 12345678901234567  # not rounded through a float


# -- query ----------------------------------------------------------------------


def query_array(collection_format: str) -> str:
    return f"""\
        - name: ids
          in: query
          type: array
          collectionFormat: {collection_format}
          items: {{type: integer}}
"""


def test_query_array_in_each_collection_format(services: ServiceMaker) -> None:
    cases = {"csv": "1,2,3", "ssv": "1 2 3", "tsv": "1\t2\t3", "pipes": "1|2|3"}
    for collection_format, raw in cases.items():
        client = services.client(echo_spec("/q", query_array(collection_format)), ECHO)
        response = client.get("/q", query_string={"ids": raw})
        assert response.status_code == 200, (collection_format, response.json)
        assert response.json["got"]["ids"] == [1, 2, 3], collection_format
    client = services.client(echo_spec("/q", query_array("multi")), ECHO)
    assert client.get("/q?ids=1&ids=2&ids=3").json["got"]["ids"] == [1, 2, 3]
    # csv is the default collectionFormat
    client = services.client(echo_spec("/q", "        - {name: ids, in: query, type: array, items: {type: string}}\n"), ECHO)
    assert client.get("/q?ids=a,b").json["got"]["ids"] == ["a", "b"]


def test_query_array_items_are_validated_with_their_index(services: ServiceMaker) -> None:
    client = services.client(echo_spec("/q", query_array("csv")), ECHO)
    response = client.get("/q?ids=1,x,3")
    assert response.status_code == 400
    assert list(errors_of(response.json)) == ["/query/ids/1"]


def test_query_defaults_required_and_absent_optional(services: ServiceMaker) -> None:
    client = services.client(
        echo_spec(
            "/q",
            """\
        - {name: limit, in: query, type: integer, default: 10, maximum: 100}
        - {name: tags, in: query, type: array, items: {type: string}, default: [a, b]}
        - {name: q, in: query, type: string, required: true}
        - {name: page, in: query, type: integer}
""",
        ),
        ECHO,
    )
    response = client.get("/q?q=hello")
    assert response.status_code == 200, response.json
    assert response.json["got"] == {"limit": 10, "tags": ["a", "b"], "q": "hello", "page": None}
    assert client.get("/q?q=x&limit=5").json["got"]["limit"] == 5
    response = client.get("/q?limit=500")
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/query/q", "/query/limit"}
    assert errors_of(response.json)["/query/q"] == "is required"


# -- header ---------------------------------------------------------------------


def test_header_parameters_are_case_insensitive_and_python_safe(services: ServiceMaker) -> None:
    client = services.client(
        echo_spec(
            "/h",
            """\
        - {name: X-Request-Id, in: header, type: string, required: true}
        - {name: X-Count, in: header, type: integer}
""",
        ),
        ECHO,
    )
    response = client.get("/h", headers={"x-request-id": "abc", "X-COUNT": "3"})
    assert response.status_code == 200, response.json
    assert response.json["got"] == {"x_request_id": "abc", "x_count": 3}
    response = client.get("/h", headers={"X-Count": "many"})
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/header/X-Request-Id", "/header/X-Count"}


# -- body -----------------------------------------------------------------------

BODY_SPEC = """
paths:
  /pets:
    post:
      x-bind-server: HANDLERS.create
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
        - {name: dry_run, in: query, type: boolean, default: false}
      responses:
        201: {description: created, schema: {$ref: '#/definitions/Pet'}}
  /inline:
    post:
      x-bind-server: HANDLERS.inline
      parameters:
        - name: payload
          in: body
          schema:
            type: object
            required: [a]
            properties:
              a: {type: integer}
              when: {type: string, format: date}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
definitions:
  Pet:
    type: object
    required: [name]
    properties:
      name: {type: string}
      age: {type: integer}
"""

BODY_HANDLERS = """
from macaron import Model, apis

def create(pet, dry_run):
    assert isinstance(pet, apis.x.Pet), type(pet)
    assert dry_run is False or dry_run is True
    pet.age = (pet.age or 0) + 1
    return pet, 201

def inline(payload):
    if payload is None:
        return {"none": True}
    assert isinstance(payload, Model)
    return {"a": payload.a, "when": type(payload.when).__name__}
"""


def test_body_arrives_as_a_model_as_first_positional_argument(services: ServiceMaker) -> None:
    client = services.client(BODY_SPEC, BODY_HANDLERS)
    response = client.post("/pets?dry_run=true", json={"name": "Rex", "age": 3})
    assert response.status_code == 201, response.json
    assert response.json == {"name": "Rex", "age": 4}


def test_missing_required_body_is_a_400(services: ServiceMaker) -> None:
    client = services.client(BODY_SPEC, BODY_HANDLERS)
    response = client.post("/pets")
    assert response.status_code == 400
    assert response.json["error"] == "INVALID_PARAMETER"
    assert errors_of(response.json) == {"/body": "a request body is required"}


def test_inline_body_schema_becomes_a_model(services: ServiceMaker) -> None:
    client = services.client(BODY_SPEC, BODY_HANDLERS)
    response = client.post("/inline", json={"a": 1, "when": "2024-02-29"})
    assert response.status_code == 200, response.json
    assert response.json == {"a": 1, "when": "date"}
    assert client.post("/inline").json == {"none": True}  # optional body absent
    response = client.post("/inline", json={"when": "not a date"})
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/body/a", "/body/when"}


# -- formData -------------------------------------------------------------------

FORM_SPEC = """
paths:
  /upload:
    post:
      x-bind-server: HANDLERS.upload
      consumes: [multipart/form-data]
      parameters:
        - {name: caption, in: formData, type: string, required: true}
        - {name: count, in: formData, type: integer, default: 1}
        - {name: tags, in: formData, type: array, items: {type: string}, collectionFormat: multi}
        - {name: file, in: formData, type: file, required: true}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
  /login:
    post:
      x-bind-server: HANDLERS.login
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: user, in: formData, type: string, required: true}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
"""

FORM_HANDLERS = """
def upload(caption, count, tags, file):
    return {"caption": caption, "count": count, "tags": tags, "filename": file.filename,
            "content_type": file.mimetype, "content": file.read().decode()}

def login(user):
    return {"user": user}
"""


def test_form_data_with_a_file_keeps_its_name_and_content_type(services: ServiceMaker) -> None:
    client = services.client(FORM_SPEC, FORM_HANDLERS)
    response = client.post(
        "/upload",
        data={"caption": "hi", "count": "2", "tags": ["a", "b"], "file": (io.BytesIO(b"hello"), "notes.txt", "text/plain")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    assert response.json == {"caption": "hi", "count": 2, "tags": ["a", "b"], "filename": "notes.txt", "content_type": "text/plain", "content": "hello"}


def test_form_data_problems_are_all_reported(services: ServiceMaker) -> None:
    client = services.client(FORM_SPEC, FORM_HANDLERS)
    response = client.post("/upload", data={"count": "many"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/formData/caption", "/formData/count", "/formData/file"}


def test_url_encoded_form(services: ServiceMaker) -> None:
    client = services.client(FORM_SPEC, FORM_HANDLERS)
    assert client.post("/login", data={"user": "ann"}).json == {"user": "ann"}
    assert client.post("/login", data={}).status_code == 400


def test_a_handler_changing_a_list_default_does_not_change_it_for_the_next_request(services: ServiceMaker) -> None:
    spec = """
paths:
  /q:
    get:
      x-bind-server: HANDLERS.grow
      parameters:
        - {name: tags, in: query, type: array, items: {type: string}, default: [a]}
      responses:
        200: {description: ok, schema: {type: array, items: {type: string}}}
"""
    handlers = """
def grow(tags):
    tags.append("more")
    return tags
"""
    client = services.client(spec, handlers)
    assert client.get("/q").json == ["a", "more"]
    assert client.get("/q").json == ["a", "more"]
