"""OpenAPI 3.0 and 3.1 specs served end to end: the same service a Swagger 2.0 spec would give."""

from __future__ import annotations

import io
from typing import Any

import pytest

from macaron import apis
from macaron.auth import generate_token
from macaron.builtins.openapi3 import OpenApi3Loader
from macaron.builtins.swagger2 import read_document
from macaron.spec import SpecError
from service_maker import ServiceMaker

PETSTORE = """
openapi: 3.0.3
info: {title: petstore, version: '1.2'}
servers:
  - url: 'http://{host}/{version}'
    variables:
      host: {default: pets.example.com}
      version: {default: v1}
paths:
  /pets:
    get:
      operationId: list_pets
      x-bind-server: HANDLERS.list_pets
      parameters:
        - {name: tags, in: query, schema: {type: array, items: {type: string}}}
        - {name: ids, in: query, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: words, in: query, style: pipeDelimited, schema: {type: array, items: {type: string}}}
        - {name: limit, in: query, schema: {type: integer, format: int32, minimum: 1, default: 10}}
        - {name: X-Request-Tag, in: header, schema: {type: string}}
      responses:
        '200':
          description: the pets
          content:
            application/json:
              schema: {type: array, items: {$ref: '#/components/schemas/Pet'}}
    post:
      operationId: add_pet
      x-bind-server: HANDLERS.add_pet
      requestBody:
        $ref: '#/components/requestBodies/NewPet'
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
        default:
          $ref: '#/components/responses/Problem'
  /pets/{pet_id}:
    parameters:
      - $ref: '#/components/parameters/PetId'
    get:
      x-bind-server: HANDLERS.get_pet
      responses:
        '200':
          description: a pet
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
  /pets/{pet_id}/photo:
    post:
      x-bind-server: HANDLERS.upload_photo
      parameters:
        - $ref: '#/components/parameters/PetId'
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [photo, caption]
              properties:
                caption: {type: string}
                rating: {type: integer, minimum: 1, maximum: 5}
                photo: {type: string, format: binary}
      responses:
        '200':
          description: stored
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
  /broken:
    get:
      x-bind-server: HANDLERS.broken
      responses:
        '200':
          description: a pet, supposedly
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
components:
  parameters:
    PetId: {name: pet_id, in: path, required: true, schema: {type: integer}}
  requestBodies:
    NewPet:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Pet'}
  responses:
    Problem:
      description: a problem
      content:
        application/problem+json:
          schema: {type: object, additionalProperties: true}
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        id: {type: integer}
        name: {type: string, minLength: 1}
        nickname: {type: string, nullable: true}
        status: {type: string, enum: [available, sold], nullable: true}
        owner:
          nullable: true
          allOf: [{$ref: '#/components/schemas/Owner'}]
        vet: {$ref: '#/components/schemas/Owner', nullable: true}
    Owner:
      type: object
      required: [name]
      properties:
        name: {type: string}
"""

PETSTORE_HANDLERS = """
from macaron import apis

def list_pets(tags=None, ids=None, words=None, limit=None, x_request_tag=None):
    return [apis.x.Pet(id=1, name="rex", nickname=None)] if not tags else [
        {"name": "query", "nickname": repr((tags, ids, words, limit, x_request_tag))}
    ]

def add_pet(body):
    body.id = 7
    return body

def get_pet(pet_id):
    return {"id": pet_id, "name": "rex", "owner": None, "vet": {"name": "dr who"}, "status": None}

def upload_photo(pet_id, caption, photo, rating=None):
    return {"pet_id": pet_id, "caption": caption, "rating": rating, "filename": photo.filename, "content": photo.read().decode()}

def broken():
    return {"id": "not a number"}
"""


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    return {problem["field"]: problem["message"] for problem in body["errors"]}


@pytest.fixture
def petstore(services: ServiceMaker) -> Any:
    return services.app(PETSTORE, PETSTORE_HANDLERS, header=False)


def test_servers_url_path_with_variables_is_the_base_path(petstore: Any) -> None:
    client = petstore.test_client()
    assert client.get("/v1/pets").status_code == 200
    assert client.get("/pets").status_code == 404


def test_query_styles_header_and_defaults_arrive_as_python_values(petstore: Any) -> None:
    client = petstore.test_client()
    response = client.get("/v1/pets?tags=a&tags=b&ids=1,2,3&words=x|y", headers={"X-Request-Tag": "t"})
    assert response.status_code == 200, response.json
    assert response.json == [{"name": "query", "nickname": "(['a', 'b'], [1, 2, 3], ['x', 'y'], 10, 't')"}]
    assert client.get("/v1/pets").json == [{"id": 1, "name": "rex", "nickname": None}]  # None on a nullable property is sent as null


def test_bad_parameters_are_all_reported_by_pointer(petstore: Any) -> None:
    response = petstore.test_client().get("/v1/pets?ids=1,x&limit=0")
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/query/ids/1", "/query/limit"}


def test_json_request_body_arrives_as_a_model_and_is_validated(petstore: Any) -> None:
    client = petstore.test_client()
    response = client.post("/v1/pets", json={"name": "tom", "nickname": None, "owner": {"name": "ann"}})
    assert response.status_code == 201, response.json
    assert response.json == {"id": 7, "name": "tom", "nickname": None, "owner": {"name": "ann"}}
    assert isinstance(apis.x.Pet(name="a"), object)
    response = client.post("/v1/pets", json={"name": "", "status": "lost", "owner": {}})
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/body/name", "/body/status", "/body/owner/name"}
    assert client.post("/v1/pets", data="").status_code == 400  # requestBody.required


def test_nullable_properties_accept_null_in_responses(petstore: Any) -> None:
    response = petstore.test_client().get("/v1/pets/3")
    assert response.status_code == 200, response.json
    assert response.json == {"id": 3, "name": "rex", "owner": None, "vet": {"name": "dr who"}, "status": None}
    assert petstore.test_client().get("/v1/pets/abc").status_code == 400


def test_a_response_that_breaks_its_schema_is_a_500(petstore: Any) -> None:
    response = petstore.test_client().get("/v1/broken")
    assert response.status_code == 500
    assert response.json["error"] == "BAD_RESPONSE"


def test_multipart_request_body_becomes_form_fields_and_a_file(petstore: Any) -> None:
    client = petstore.test_client()
    response = client.post(
        "/v1/pets/5/photo",
        data={"caption": "hi", "rating": "4", "photo": (io.BytesIO(b"PNG..."), "rex.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    assert response.json == {"pet_id": 5, "caption": "hi", "rating": 4, "filename": "rex.png", "content": "PNG..."}
    response = client.post("/v1/pets/5/photo", data={"rating": "9"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/formData/caption", "/formData/rating", "/formData/photo"}


def test_the_api_view_is_the_engines_format(services: ServiceMaker) -> None:
    file = services.write(PETSTORE, PETSTORE_HANDLERS, header=False) / "apis" / "x.yaml"
    api = OpenApi3Loader(file, read_document(file), "3.0").load()
    assert api.format == "openapi-3.0"
    assert api.base_path == "/v1"
    assert set(api.definitions) == {"Pet", "Owner"}
    pet = api.definitions["Pet"]["properties"]
    assert pet["nickname"]["type"] == ["string", "null"]
    assert pet["status"]["enum"] == ["available", "sold", None]
    assert pet["vet"] == {"anyOf": [{"$ref": "#/definitions/Owner"}, {"type": "null"}]}
    assert pet["owner"] == {"anyOf": [{"allOf": [{"$ref": "#/definitions/Owner"}]}, {"type": "null"}]}
    add = next(op for op in api.operations if op.operation_id == "add_pet")
    assert [(p.name, p.location, p.required) for p in add.parameters] == [("body", "body", True)]
    assert add.consumes == ["application/json"]
    assert add.produces == ["application/json", "application/problem+json"]
    assert set(add.responses) == {201, "default"}
    listing = next(op for op in api.operations if op.operation_id == "list_pets")
    assert {p.name: p.collection_format for p in listing.parameters} == {"tags": "multi", "ids": "csv", "words": "pipes", "limit": None, "X-Request-Tag": None}
    upload = next(op for op in api.operations if op.path == "/v1/pets/{pet_id}/photo")
    assert upload.consumes == ["multipart/form-data"]
    assert [(p.name, p.location, p.is_file, p.required) for p in upload.parameters] == [
        ("pet_id", "path", False, True), ("caption", "formData", False, True), ("rating", "formData", False, False), ("photo", "formData", True, True),
    ]  # fmt: skip


# -- OpenAPI 3.1 -----------------------------------------------------------------------

SPEC_31 = """
openapi: 3.1.0
info: {title: t, version: '1'}
servers: [{url: /api}]
paths:
  /measure:
    post:
      x-bind-server: HANDLERS.measure
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Measure'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Measure'}
components:
  schemas:
    Measure:
      type: object
      required: [value, unit]
      properties:
        value: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 100}
        unit: {const: cm}
        label: {type: [string, 'null']}
"""


def test_openapi_31_type_lists_const_and_numeric_exclusive_bounds(services: ServiceMaker) -> None:
    client = services.client(SPEC_31, "def measure(body):\n    return body\n", header=False)
    ok = {"value": 0.5, "unit": "cm", "label": None}
    response = client.post("/api/measure", json=ok)
    assert response.status_code == 200, response.json
    assert response.json == ok
    response = client.post("/api/measure", json={"value": 0, "unit": "in", "label": 3})
    assert response.status_code == 400
    assert errors_of(response.json).keys() == {"/body/value", "/body/unit", "/body/label"}
    assert client.post("/api/measure", json={"value": 100, "unit": "cm"}).status_code == 400
    assert client.post("/api/measure", json={"value": 99.9, "unit": "cm"}).status_code == 200


# -- $ref across files -----------------------------------------------------------------

SPEC_REFS = """
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /things/{id}:
    get:
      x-bind-server: HANDLERS.thing
      parameters:
        - $ref: 'shared/common.yaml#/components/parameters/Id'
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: 'shared/common.yaml#/components/schemas/Thing'}
"""

COMMON = """
openapi: 3.0.3
info: {title: common, version: '1'}
paths: {}
components:
  parameters:
    Id: {name: id, in: path, required: true, schema: {type: integer, maximum: 10}}
  schemas:
    Thing:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        part: {$ref: '#/components/schemas/Part'}
    Part:
      type: object
      properties:
        size: {type: integer}
"""


def test_refs_into_another_file(services: ServiceMaker) -> None:
    handlers = "def thing(id):\n    return {'id': id, 'part': {'size': 'big' if id == 9 else 3}}\n"
    client = services.client(SPEC_REFS, handlers, header=False, files={"apis/shared/common.yaml": COMMON})
    assert client.get("/things/4").json == {"id": 4, "part": {"size": 3}}
    assert client.get("/things/11").status_code == 400
    assert client.get("/things/9").status_code == 500  # Part.size is checked: the definition came along


# -- errors at start-up ----------------------------------------------------------------

MINIMAL = """
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /hello:
    get:
      operationId: hello
      x-bind-server: HANDLERS.hello
{extra}      responses:
        '200': {{description: ok}}
"""


def start_error(services: ServiceMaker, spec: str) -> SpecError:
    root = services.write(spec, "def hello(**kwargs):\n    return {}\n", header=False)
    with pytest.raises(SpecError) as caught:
        services.build(root)
    error = caught.value
    assert error.file.endswith("x.yaml") and error.file in str(error)
    return error


def test_a_document_that_breaks_the_openapi_schema_names_file_pointer_and_operation(services: ServiceMaker) -> None:
    error = start_error(services, MINIMAL.format(extra="      parameters:\n        - {name: n, in: query, schema: {type: integr}}\n"))
    assert error.pointer == "/paths/~1hello/get/parameters/0/schema/type"
    assert error.operation == "hello"
    assert "not a valid OpenAPI 3.0 document" in str(error)
    error = start_error(services, MINIMAL.format(extra="      parameters:\n        - {name: n, in: body, schema: {type: string}}\n"))
    assert error.pointer == "/paths/~1hello/get/parameters/0/in"
    assert "path, query, header or cookie" in str(error)


@pytest.mark.parametrize(
    ("extra", "pointer", "message"),
    [
        ("      parameters:\n        - {name: c, in: query, schema: {type: array, items: {type: object}}}\n", "/paths/~1hello/get/parameters/0", "items are arrays or objects"),
        ("      parameters:\n        - {name: id, in: path, required: true, schema: {type: string}}\n", "/paths/~1hello/get", "not in the path"),
        ("      parameters:\n        - {name: m, in: query, style: deepObject, schema: {type: array, items: {type: string}}}\n", "/paths/~1hello/get/parameters/0", "deepObject"),
        ("      parameters:\n        - {$ref: '#/components/parameters/Nope'}\n", "/paths/~1hello/get/parameters/0", "cannot be resolved"),
        ("      requestBody:\n        content:\n          text/csv: {schema: {type: object}}\n", "/paths/~1hello/get/requestBody/content/text~1csv/schema", "must be type: string"),
        (
            "      requestBody:\n        content:\n          text/plain: {}\n          multipart/form-data: {schema: {type: object, properties: {a: {type: string}}}}\n",
            "/paths/~1hello/get/requestBody/content",
            "form fields or as text/plain, not both",
        ),
    ],
)
def test_what_macaron_cannot_serve_stops_start_up(services: ServiceMaker, extra: str, pointer: str, message: str) -> None:
    error = start_error(services, MINIMAL.format(extra=extra))
    assert error.pointer == pointer
    assert error.operation == "hello"
    assert message in error.reason


def test_other_documents_are_not_taken(services: ServiceMaker) -> None:
    root = services.write("openapi: 2.5.0\ninfo: {title: t, version: '1'}\npaths: {}\n", "", header=False)
    with pytest.raises(SpecError, match=r"x\.yaml.*no plugin can load this spec.*OpenAPI 3\.0/3\.1"):
        services.build(root)


# -- security --------------------------------------------------------------------------

SECURE = """
openapi: 3.0.3
info: {title: t, version: '1'}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer, bearerFormat: JWT}
paths:
  /me:
    get:
      x-bind-server: HANDLERS.me
      security: [{bearer: []}]
      responses:
        '200':
          description: me
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
"""


def test_an_http_bearer_scheme_is_checked_as_a_macaron_jwt(services: ServiceMaker) -> None:
    handlers = "from macaron.auth import get_userid\n\ndef me():\n    return {'user': get_userid()}\n"
    app = services.app(SECURE, handlers, header=False, config={"jwt_secret": "a-test-secret-of-a-decent-length-0123456789"})
    client = app.test_client()
    response = client.get("/me")
    assert response.status_code == 401
    assert response.json["error"] == "AUTHORIZATION_HEADER_MISSING"
    with app.app_context():
        token = generate_token("carol")
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json
    assert response.json == {"user": "carol"}


def test_a_scheme_macaron_cannot_check_is_named_where_openapi_3_keeps_it(services: ServiceMaker) -> None:
    spec = SECURE.replace("bearer: {type: http, scheme: bearer, bearerFormat: JWT}", "bearer: {type: http, scheme: basic}")
    root = services.write(spec, "def me():\n    return {}\n", header=False, config={"jwt_secret": "a-test-secret-of-a-decent-length-0123456789"})
    with pytest.raises(SpecError) as caught:
        services.build(root)
    assert caught.value.pointer == "/components/securitySchemes/bearer"
