"""Loading specs: start-up errors that say where, $ref across files, basePath, YAML and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from macaron import create_app
from macaron.app import StartupError
from macaron.config import ConfigError
from macaron.plugins import get_plugin_manager
from macaron.spec import SpecError
from service_maker import HEADER, ServiceMaker

OK_HANDLER = """
def hello():
    return {"hello": "world"}
"""

OPERATION = """
paths:
  /hello:
    get:
      operationId: hello
      x-bind-server: HANDLERS.hello
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
"""


def start_error(services: ServiceMaker, spec: str, handlers: str = OK_HANDLER, **kwargs: object) -> SpecError:
    root = services.write(spec, handlers, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SpecError) as caught:
        services.build(root)
    error = caught.value
    assert error.file.endswith("x.yaml") or error.file.endswith("x.json"), error
    assert str(Path(error.file)) in str(error)
    return error


def test_invalid_swagger_names_file_path_and_operation(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /hello:
    get:
      operationId: hello
      x-bind-server: HANDLERS.hello
      parameters:
        - {name: n, in: query, type: integr}
      responses:
        200: {description: ok}
""",
    )
    assert error.pointer == "/paths/~1hello/get/parameters/0/type"
    assert error.operation == "hello"
    assert "(operation hello)" in str(error)
    assert '"integr" is not one of "string", "number", "boolean", "integer", "array"' in str(error)


def test_invalid_swagger_messages_come_from_the_alternative_meant(services: ServiceMaker) -> None:
    def parameter_error(parameter: str) -> SpecError:
        return start_error(
            services,
            f"""
paths:
  /hello:
    get:
      x-bind-server: HANDLERS.hello
      parameters:
        - {parameter}
      responses:
        200: {{description: ok}}
""",
        )

    error = parameter_error("{name: n, in: cookie, type: string}")
    assert error.pointer.endswith("/parameters/0/in") and "not a parameter location" in error.reason
    error = parameter_error("{name: n, in: query, type: string, pattern: '[unclosed'}")
    assert error.pointer.endswith("/parameters/0/pattern") and "regex" in error.reason
    error = parameter_error("{name: n, in: query}")
    assert error.pointer.endswith("/parameters/0") and '"type" is a required property' in error.reason


def test_unresolvable_ref(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /hello:
    get:
      x-bind-server: HANDLERS.hello
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Missing'}}
""",
    )
    assert error.pointer == "/paths/~1hello/get/responses/200/schema"
    assert error.operation == "GET /hello"
    assert "#/definitions/Missing" in str(error)


def test_undeclared_path_parameter(services: ServiceMaker) -> None:
    error = start_error(services, OPERATION.replace("/hello:", "/hello/{who}:"))
    assert "'who'" in str(error) and "not declared" in str(error)
    assert error.pointer == "/paths/~1hello~1{who}/get"
    assert error.operation == "hello"


def test_missing_handler_module_and_function(services: ServiceMaker) -> None:
    error = start_error(services, OPERATION.replace("HANDLERS.hello", "nowhere_at_all.hello"))
    assert "no module named 'nowhere_at_all'" in str(error)
    assert error.operation == "hello" and error.pointer == "/paths/~1hello/get"
    error = start_error(services, OPERATION.replace("HANDLERS.hello", "HANDLERS.goodbye"))
    assert "has no function 'goodbye'" in str(error)


def test_a_handler_module_that_fails_to_import(services: ServiceMaker) -> None:
    error = start_error(services, OPERATION, "import not_installed_anywhere\n")
    assert "not_installed_anywhere" in str(error)


def test_no_x_bind_server(services: ServiceMaker) -> None:
    error = start_error(services, OPERATION.replace("      x-bind-server: HANDLERS.hello\n", ""))
    assert "x-bind-server" in str(error)
    assert error.operation == "hello"


def test_x_no_bind_server_skips_the_operation(services: ServiceMaker) -> None:
    app = services.app(OPERATION.replace("      x-bind-server: HANDLERS.hello\n", "      x-no-bind-server: true\n"), OK_HANDLER)
    assert app.test_client().get("/hello").status_code == 404


def test_dotted_operation_id_binds_the_handler(services: ServiceMaker) -> None:
    app = services.app(OPERATION.replace("      operationId: hello\n      x-bind-server: HANDLERS.hello\n", "      operationId: HANDLERS.hello\n"), OK_HANDLER)
    assert app.test_client().get("/hello").json == {"hello": "world"}


def test_duplicate_operation_id(services: ServiceMaker) -> None:
    error = start_error(
        services,
        OPERATION
        + """
  /again:
    get:
      operationId: hello
      x-bind-server: HANDLERS.hello
      responses:
        200: {description: ok}
""",
    )
    assert "operationId 'hello'" in str(error)
    assert error.pointer == "/paths/~1again/get"


def test_a_default_that_breaks_its_own_schema(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /hello:
    get:
      operationId: hello
      x-bind-server: HANDLERS.hello
      parameters:
        - {name: limit, in: query, type: integer, minimum: 1, default: 0}
      responses:
        200: {description: ok}
""",
        "def hello(limit):\n    return {}\n",
    )
    assert error.pointer == "/paths/~1hello/get"
    assert error.operation == "hello"
    assert "default of query parameter 'limit'" in error.reason and "minimum" in error.reason


def test_two_body_parameters(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /hello:
    post:
      x-bind-server: HANDLERS.hello
      parameters:
        - {name: a, in: body, schema: {type: object}}
        - {name: b, in: body, schema: {type: object}}
      responses:
        200: {description: ok}
""",
    )
    assert "more than one body parameter" in str(error)
    assert error.operation == "POST /hello"


def test_not_a_spec_and_not_yaml(services: ServiceMaker) -> None:
    error = start_error(services, "swagger: '2.0'\npaths: [\n", header=False)
    # Where an editor finds it: the file, its line and column; not PyYAML's "<unicode string>" nor a JSON path.
    assert re.search(r"\.yaml:3:1: not valid YAML: while parsing a flow node; did not find expected node content$", str(error)), str(error)
    assert "unicode string" not in str(error) and " at /" not in str(error)
    error = start_error(services, "openapi: 9.0\n", header=False)
    assert "no plugin can load this spec" in str(error)


def test_a_service_without_specs(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "macaron.yaml").write_text("name: empty\n")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.set_blocked("ping")  # or /ping and /version would be the service's only API
    with pytest.raises(StartupError, match="no spec to serve"):
        create_app(root, plugin_manager=pm)


def test_ref_into_another_file_for_definitions_and_parameters(services: ServiceMaker) -> None:
    spec = """
paths:
  /pets/{id}:
    get:
      x-bind-server: HANDLERS.pet
      parameters:
        - $ref: 'common.yaml#/parameters/PetId'
        - $ref: '#/parameters/Verbose'
      responses:
        200: {description: ok, schema: {$ref: 'common.yaml#/definitions/Pet'}}
        404: {$ref: 'common.yaml#/responses/NotFound'}
parameters:
  Verbose: {name: verbose, in: query, type: boolean, default: false}
"""
    common = """
parameters:
  PetId: {name: id, in: path, required: true, type: integer, minimum: 1}
responses:
  NotFound:
    description: no such pet
    schema: {$ref: '#/definitions/Problem'}
definitions:
  Problem:
    type: object
    properties:
      error: {type: string}
  Pet:
    type: object
    required: [id, owner]
    properties:
      id: {type: integer}
      owner: {$ref: '#/definitions/Owner'}
  Owner:
    type: object
    properties:
      name: {type: string}
"""
    handlers = """
from macaron import apis

def pet(id, verbose):
    if id == 404:
        return apis.x.Problem(error="no pet"), 404
    return apis.x.Pet(id=id, owner=apis.x.Owner(name="verbose" if verbose else "ann"))
"""
    client = services.client(spec, handlers, files={"apis/common.yaml": common})
    response = client.get("/pets/3?verbose=true")
    assert response.status_code == 200, response.json
    assert response.json == {"id": 3, "owner": {"name": "verbose"}}
    assert client.get("/pets/0").status_code == 400
    response = client.get("/pets/404")
    assert (response.status_code, response.json) == (404, {"error": "no pet"})


def test_a_ref_to_a_missing_file(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /hello:
    get:
      x-bind-server: HANDLERS.hello
      responses:
        200: {description: ok, schema: {$ref: 'nope.yaml#/definitions/Pet'}}
""",
    )
    assert "nope.yaml" in str(error)
    assert error.operation == "GET /hello"


def test_base_path_is_honoured(services: ServiceMaker) -> None:
    client = services.client("basePath: /api/v2\n" + OPERATION, OK_HANDLER)
    assert client.get("/api/v2/hello").json == {"hello": "world"}
    assert client.get("/hello").status_code == 404


def test_integer_and_string_response_codes(services: ServiceMaker) -> None:
    client = services.client(OPERATION.replace("200:", "'200':"), OK_HANDLER)
    assert client.get("/hello").status_code == 200
    client = services.client(OPERATION, OK_HANDLER)  # 200: unquoted, an integer to YAML
    assert client.get("/hello").status_code == 200


def test_json_spec_file(services: ServiceMaker) -> None:
    import yaml

    document = yaml.safe_load(HEADER + OPERATION.replace("HANDLERS", "HANDLERS"))
    client = services.client(json.dumps(document), OK_HANDLER, suffix=".json")
    assert client.get("/hello").json == {"hello": "world"}


def test_two_operations_on_one_route(services: ServiceMaker) -> None:
    error = start_error(
        services,
        """
paths:
  /items/{id}:
    get:
      operationId: byId
      x-bind-server: HANDLERS.hello
      parameters: [{name: id, in: path, required: true, type: string}]
      responses: {200: {description: ok}}
  /items/{key}:
    get:
      operationId: byKey
      x-bind-server: HANDLERS.hello
      parameters: [{name: key, in: path, required: true, type: string}]
      responses: {200: {description: ok}}
""",
        "def hello(**kwargs):\n    return {}\n",
    )
    assert error.operation == "byKey"
    assert "already served by operation byId" in str(error)


def test_a_route_of_a_builtin_cannot_be_taken_silently(services: ServiceMaker) -> None:
    root = services.write(OPERATION.replace("/hello:", "/ping:"), OK_HANDLER)
    with pytest.raises(SpecError, match="GET /ping is already served by operation hello"):
        services.build(root)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"reject_unknown_fields": "no"}, "'reject_unknown_fields' must be true or false, not 'no'"),
        ({"max_body_size": "10MB"}, "'max_body_size' must be a positive number of bytes, not '10MB'"),
        ({"max_body_size": 0}, "'max_body_size' must be a positive number of bytes, not 0"),
    ],
)
def test_engine_settings_of_the_wrong_type_stop_start_up(services: ServiceMaker, setting: dict[str, object], message: str) -> None:
    root = services.write(OPERATION, OK_HANDLER, config=setting)
    with pytest.raises(ConfigError) as caught:
        services.build(root)
    assert message in str(caught.value)
    assert "macaron.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("handler", "problem"),
    [
        ("def hello(pet):\n    return {}\n", "unexpected keyword argument 'verbose'"),
        ("def hello(verbose):\n    return {}\n", "multiple values for argument 'verbose'"),
        ("def hello(pet, verbose, extra):\n    return {}\n", "missing a required argument: 'extra'"),
    ],
)
def test_a_handler_that_cannot_take_the_operations_arguments(services: ServiceMaker, handler: str, problem: str) -> None:
    spec = """
paths:
  /pets:
    post:
      operationId: addPet
      x-bind-server: HANDLERS.hello
      parameters:
        - {name: pet, in: body, schema: {type: object}}
        - {name: verbose, in: query, type: boolean}
      responses:
        200: {description: ok}
"""
    error = start_error(services, spec, handler)
    assert error.operation == "addPet"
    assert "pet (the body, first), verbose" in str(error)
    assert problem in str(error)
    # **kwargs and defaults are fine
    services.build(services.write(spec, "def hello(pet, **options):\n    return None\n"))
    services.build(services.write(spec, "def hello(pet, verbose, extra=1):\n    return None\n"))


def test_unquoted_yaml_dates_in_a_spec_are_strings(services: ServiceMaker) -> None:
    spec = """
paths:
  /d:
    get:
      x-bind-server: HANDLERS.day
      parameters:
        - {name: since, in: query, type: string, format: date, default: 2024-01-01}
      responses:
        200:
          description: ok
          schema:
            type: object
            properties:
              day: {type: string, format: date, example: 2024-01-01}
"""
    client = services.client(spec, "def day(since):\n    return {'day': since}\n")
    assert client.get("/d").json == {"day": "2024-01-01"}
    assert client.get("/d?since=2023-12-31").json == {"day": "2023-12-31"}
