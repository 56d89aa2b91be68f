"""The client writes every parameter as the server reads it: a round trip through every style, over HTTP and in process.

A service echoes the one parameter each of its operations has, as the server read
it; the client sends values full of reserved characters and must get them back
unchanged, or be refused before anything is sent when the style cannot carry them.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from macaron import apis, create_app
from macaron.client import BadClientRequest, load_clients
from macaron.spec import SpecError
from servers import gunicorn_service
from service_maker import ServiceMaker

ECHO = """
from flask import request
from macaron.models import to_wire

def echo(**arguments):
    found = [to_wire(value) for value in arguments.values() if value is not None]
    seen = {"raw": request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI"), "cookie": request.headers.get("Cookie"), "header": request.headers.get("X-V")}
    return {"value": found[0] if found else None, **seen}

def set_cookie():
    return {}, 200, {"Set-Cookie": "v=from-the-server; Path=/"}
"""

RESPONSES = {"200": {"description": "what the server read", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}}}
SCHEMAS = {
    "primitive": {"type": "string"},
    "array": {"type": "array", "items": {"type": "string"}},
    "object": {"type": "object", "properties": {"R": {"type": "string"}, "G": {"type": "integer"}}},
}
STYLES = {
    "path": [("simple", e) for e in (False, True)] + [("label", e) for e in (False, True)] + [("matrix", e) for e in (False, True)],
    "query": [("form", False), ("form", True), ("spaceDelimited", False), ("pipeDelimited", False), ("deepObject", True)],
    "header": [("simple", False), ("simple", True)],
    "cookie": [("form", False), ("form", True)],
}


def fits(style: str, shape: str, explode: bool) -> bool:
    """Whether OpenAPI 3's table has the combination (the loader refuses the others)."""
    if style == "deepObject":
        return shape == "object"
    if style in ("spaceDelimited", "pipeDelimited"):
        return shape != "primitive"
    return True


CASES = [
    (location, style, shape, explode)
    for location, styles in STYLES.items()
    for style, explode in styles
    for shape in SCHEMAS
    if fits(style, shape, explode)
]


def case_id(case: tuple[str, str, str, bool]) -> str:
    location, style, shape, explode = case
    return f"{location}_{style}_{shape}_{'exploded' if explode else 'flat'}"


def openapi_spec() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for case in CASES:
        location, style, shape, explode = case
        name = "X-V" if location == "header" else "v"
        route = f"/{location}/{style}/{shape}/{str(explode).lower()}" + ("/{v}" if location == "path" else "")
        parameter = {"name": name, "in": location, "style": style, "explode": explode, "schema": SCHEMAS[shape], "required": location == "path"}
        paths[route] = {"get": {"operationId": case_id(case), "x-bind-server": "echo_api.echo", "parameters": [parameter], "responses": RESPONSES}}
    paths["/set-cookie"] = {"get": {"operationId": "set_cookie", "x-bind-server": "echo_api.set_cookie", "responses": RESPONSES}}
    return {"openapi": "3.0.3", "info": {"title": "styles", "version": "1"}, "paths": paths}


# Swagger 2.0: arrays by collectionFormat, in the path, the query and headers.
FORMATS = {"path": ("csv", "ssv", "tsv", "pipes"), "query": ("csv", "ssv", "tsv", "pipes", "multi"), "header": ("csv", "ssv", "tsv", "pipes")}
LEGACY = [(location, fmt) for location, formats in FORMATS.items() for fmt in formats]


def swagger_spec() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for location, fmt in LEGACY:
        name = "X-V" if location == "header" else "v"
        route = f"/legacy/{location}/{fmt}" + ("/{v}" if location == "path" else "")
        parameter = {"name": name, "in": location, "type": "array", "items": {"type": "string"}, "collectionFormat": fmt, "required": location == "path"}
        responses = {"200": {"description": "what the server read", "schema": {"type": "object", "additionalProperties": True}}}
        paths[route] = {"get": {"operationId": f"legacy_{location}_{fmt}", "x-bind-server": "echo_api.echo", "parameters": [parameter], "responses": responses}}
    return {"swagger": "2.0", "info": {"title": "legacy", "version": "1"}, "produces": ["application/json"], "paths": paths}


def write_service(root: Path, config: dict[str, Any]) -> Path:
    (root / "apis").mkdir(parents=True)
    (root / "apis" / "styles.yaml").write_text(yaml.safe_dump(openapi_spec(), sort_keys=False))
    (root / "apis" / "legacy.yaml").write_text(yaml.safe_dump(swagger_spec(), sort_keys=False))
    (root / "echo_api.py").write_text(textwrap.dedent(ECHO))
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = write_service(tmp_path_factory.mktemp("styles") / "served", {"name": "styles"})
    with gunicorn_service(root) as url:
        yield url


@pytest.fixture(scope="module")
def over_http(served: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The clients of a service that calls the styles service over HTTP."""
    root = write_service(tmp_path_factory.mktemp("styles") / "caller", {"name": "caller", "clients": {"styles": {"url": served}, "legacy": {"url": served}}})
    return load_clients(root)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The clients of a service that serves the styles API and calls it through its own WSGI app."""
    clients = {"styles": {"in_process": True, "serve": True}, "legacy": {"in_process": True, "serve": True}}
    create_app(write_service(tmp_path_factory.mktemp("styles") / "both", {"name": "both", "clients": clients}))
    return {"styles": apis.styles.client, "legacy": apis.legacy.client}


@pytest.fixture(params=["http", "in_process"])
def clients(request: pytest.FixtureRequest) -> dict[str, Any]:
    return request.getfixturevalue("over_http" if request.param == "http" else "in_process")  # type: ignore[no-any-return]


# Every character a value may hold somewhere: delimiters of every style, URL syntax, percent, plus, non-ASCII.
RICH = "a,b;c=d.e f/g&h|i\tj?k#l%m+n[o]p:q@r's\"t€ü日"


def unsendable(location: str, style: str, shape: str, explode: bool) -> str:
    """The characters a value cannot carry in this layout, and why (written out here, not asked of macaron)."""
    if location == "header":
        # Headers are never percent-encoded: ASCII only (tabs and spaces inside), and no delimiter inside an item.
        return "€ü日" + ("" if shape == "primitive" else ",")
    cannot = "/" if location == "path" else ""  # WSGI servers decode %2F before routing
    if style == "label" and explode and shape != "primitive":
        cannot += "."  # URLs treat %2E as "."
    if style == "spaceDelimited":
        cannot += " "  # the delimiter itself is sent as %20
    if style == "pipeDelimited":
        cannot += "|"
    return cannot


def value_for(shape: str, text: str) -> Any:
    if shape == "primitive":
        return text
    if shape == "array":
        return [text, "", "x"]
    return {"R": text, "G": 7}


def call(clients: dict[str, Any], api: str, operation: str, location: str, value: Any) -> Any:
    argument = "x_v" if location == "header" else "v"
    return getattr(clients[api], operation)(**{argument: value})


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_style_round_trips_values_with_reserved_characters(clients: dict[str, Any], case: tuple[str, str, str, bool]) -> None:
    location, shape = case[0], case[2]
    text = "".join(char for char in RICH if char not in unsendable(*case))
    value = value_for(shape, text)
    assert call(clients, "styles", case_id(case), location, value)["value"] == value


@pytest.mark.parametrize("case", [c for c in CASES if unsendable(*c)], ids=case_id)
def test_a_value_the_style_cannot_carry_is_refused_before_sending(clients: dict[str, Any], case: tuple[str, str, str, bool]) -> None:
    location, shape = case[0], case[2]
    for char in unsendable(*case):
        with pytest.raises(BadClientRequest) as raised:
            call(clients, "styles", case_id(case), location, value_for(shape, f"a{char}b"))
        [problem] = raised.value.extra["errors"]
        assert problem["field"] == f"/{location}/{'X-V' if location == 'header' else 'v'}"
        assert f"contains {json.dumps(char, ensure_ascii=False)}" in problem["message"]


@pytest.mark.parametrize(("location", "fmt"), LEGACY, ids=[f"{location}_{fmt}" for location, fmt in LEGACY])
def test_swagger_collection_formats_round_trip(clients: dict[str, Any], location: str, fmt: str) -> None:
    delimiter = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|", "multi": ""}[fmt]
    cannot = {"path": "/", "header": "€ü日"}.get(location, "")
    if location == "header" or fmt in ("ssv", "tsv", "pipes"):
        cannot += delimiter  # sent as it is (headers) or encoded (space, tab, |): an item cannot hold it
    value = value_for("array", "".join(char for char in RICH if char not in cannot))
    assert call(clients, "legacy", f"legacy_{location}_{fmt}", location, value)["value"] == value
    if delimiter and delimiter in cannot:
        with pytest.raises(BadClientRequest, match="separates the values of collectionFormat"):
            call(clients, "legacy", f"legacy_{location}_{fmt}", location, ["a" + delimiter + "b"])


# What goes on the wire is OpenAPI's own table (a parameter named v, for 5, [3, 4, 5] and {"R": 100, "G": 200}).
WIRE = [
    ("path_simple_primitive_flat", "5", "/5"),
    ("path_simple_array_flat", ["3", "4", "5"], "/3,4,5"),
    ("path_simple_object_flat", {"R": "100", "G": 200}, "/R,100,G,200"),
    ("path_simple_object_exploded", {"R": "100", "G": 200}, "/R=100,G=200"),
    ("path_label_primitive_flat", "5", "/.5"),
    ("path_label_array_flat", ["3", "4", "5"], "/.3,4,5"),
    ("path_label_array_exploded", ["3", "4", "5"], "/.3.4.5"),
    ("path_label_object_flat", {"R": "100", "G": 200}, "/.R,100,G,200"),
    ("path_label_object_exploded", {"R": "100", "G": 200}, "/.R=100.G=200"),
    ("path_matrix_primitive_flat", "5", "/;v=5"),
    ("path_matrix_array_flat", ["3", "4", "5"], "/;v=3,4,5"),
    ("path_matrix_array_exploded", ["3", "4", "5"], "/;v=3;v=4;v=5"),
    ("path_matrix_object_flat", {"R": "100", "G": 200}, "/;v=R,100,G,200"),
    ("path_matrix_object_exploded", {"R": "100", "G": 200}, "/;R=100;G=200"),
    ("query_form_primitive_flat", "5", "?v=5"),
    ("query_form_array_flat", ["3", "4", "5"], "?v=3,4,5"),
    ("query_form_array_exploded", ["3", "4", "5"], "?v=3&v=4&v=5"),
    ("query_form_object_flat", {"R": "100", "G": 200}, "?v=R,100,G,200"),
    ("query_form_object_exploded", {"R": "100", "G": 200}, "?R=100&G=200"),
    ("query_spaceDelimited_array_flat", ["3", "4", "5"], "?v=3%204%205"),
    ("query_pipeDelimited_array_flat", ["3", "4", "5"], "?v=3%7C4%7C5"),
    ("query_pipeDelimited_object_flat", {"R": "100", "G": 200}, "?v=R%7C100%7CG%7C200"),
    ("query_deepObject_object_exploded", {"R": "100", "G": 200}, "?v%5BR%5D=100&v%5BG%5D=200"),
    ("path_simple_array_flat", ["a,b", "c d"], "/a%2Cb,c%20d"),  # delimiters inside values are encoded, the style's are not
    ("path_matrix_object_exploded", {"R": "x;y=z", "G": 1}, "/;R=x%3By%3Dz;G=1"),
]


@pytest.mark.parametrize(("operation", "value", "ending"), WIRE)
def test_what_the_client_sends_is_openapis_serialization(over_http: dict[str, Any], operation: str, value: Any, ending: str) -> None:
    seen = call(over_http, "styles", operation, operation.split("_")[0], value)
    assert seen["raw"].endswith(ending), seen["raw"]


def test_cookies_and_headers_go_in_their_own_headers(over_http: dict[str, Any]) -> None:
    assert call(over_http, "styles", "cookie_form_array_flat", "cookie", ["3", "4,5"])["cookie"] == "v=3,4%2C5"
    assert call(over_http, "styles", "cookie_form_object_exploded", "cookie", {"R": "a b", "G": 2})["cookie"] == "R=a%20b; G=2"
    assert call(over_http, "styles", "header_simple_object_exploded", "header", {"R": "a=b", "G": 2})["header"] == "R=a=b,G=2"


def test_a_value_that_would_change_on_the_way_is_refused(clients: dict[str, Any]) -> None:
    cases = [
        ("styles", "query_form_array_exploded", "query", [], "writes nothing in style form, exploded, so the server would not see the parameter"),
        ("styles", "query_form_array_flat", "query", [""], '[""] would reach the server as [] in style form'),
        ("styles", "path_simple_array_flat", "path", ["a,b"], 'a single item holding "," reads as several'),
        ("styles", "path_simple_primitive_flat", "path", "", "an empty path segment never reaches the operation"),
        ("styles", "path_label_primitive_flat", "path", "", 'the path segment "." is removed from URLs'),
        ("styles", "path_simple_primitive_flat", "path", "..", 'the path segment ".." is removed from URLs'),
        ("styles", "header_simple_primitive_flat", "header", " padded", "starts or ends with white space"),
    ]
    for api, operation, location, value, message in cases:
        with pytest.raises(BadClientRequest) as raised:
            call(clients, api, operation, location, value)
        assert message in raised.value.extra["errors"][0]["message"], (operation, raised.value.extra)


def test_properties_the_server_would_not_read_are_refused(clients: dict[str, Any]) -> None:
    # An exploded form object is read from its listed properties' names: another one would be dropped on the way.
    with pytest.raises(BadClientRequest) as raised:
        call(clients, "styles", "query_form_object_exploded", "query", {"R": "a", "B": "b"})
    assert raised.value.extra["errors"] == [{"field": "/query/v/B", "message": "is not allowed here (unknown field)"}]


def test_a_cookie_a_remote_sets_never_goes_out_with_the_next_call(over_http: dict[str, Any], served: str) -> None:
    assert requests.get(f"{served}/set-cookie", timeout=5).headers["Set-Cookie"].startswith("v=from-the-server")
    over_http["styles"].set_cookie()
    assert call(over_http, "styles", "cookie_form_primitive_flat", "cookie", None)["cookie"] is None


def test_allow_reserved_keeps_reserved_characters_as_they_are(services: ServiceMaker) -> None:
    spec = """
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /search:
    get:
      operationId: search
      x-bind-server: HANDLERS.echo
      parameters:
        - {name: q, in: query, allowReserved: true, schema: {type: string}}
        - {name: ids, in: query, allowReserved: true, explode: false, schema: {type: array, items: {type: string}}}
      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, additionalProperties: true}}}}}
"""
    handlers = "from flask import request\ndef echo(q=None, ids=None):\n    return {'q': q, 'ids': ids, 'raw': request.query_string.decode()}\n"
    root = services.write(spec, handlers, header=False, api="reserved", config={"clients": {"reserved": {"in_process": True, "serve": True}}})
    services.build(root)
    seen = apis.reserved.client.search(q="a/b?c:d@e!f$g'h(i)j*k,l;m&n=o+p#q%r", ids=["x/y", "u,v"])
    assert seen["q"] == "a/b?c:d@e!f$g'h(i)j*k,l;m&n=o+p#q%r" and seen["ids"] == ["x/y", "u,v"]
    # Reserved characters stay; & = + # % (form encoding's, URL syntax) and the array's own delimiter are still encoded.
    assert seen["raw"] == "q=a/b?c:d@e!f$g'h(i)j*k,l;m%26n%3Do%2Bp%23q%25r&ids=x/y,u%2Cv"


BUILD_ERRORS = [
    ("{name: 'X Token', in: header, schema: {type: string}}", "cannot send header parameter 'X Token': \"X Token\" is not a valid header name"),
    ("{name: 'a b', in: cookie, schema: {type: string}}", "cannot send cookie parameter 'a b': \"a b\" is not a valid cookie name"),
    (
        "{name: prefs, in: cookie, schema: {type: object, properties: {'dark mode': {type: boolean}}}}",
        "cannot send cookie parameter 'prefs': its property \"dark mode\" would be a cookie's name, which it cannot be",
    ),
]


@pytest.mark.parametrize(("parameter", "message"), BUILD_ERRORS)
def test_a_parameter_the_client_cannot_send_stops_start_up(services: ServiceMaker, tmp_path: Path, parameter: str, message: str) -> None:
    spec = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /hello:
    get:
      operationId: hello
      x-bind-server: HANDLERS.echo
      parameters:
        - {parameter}
      responses: {{'200': {{description: ok}}}}
"""
    root = services.write(spec, "def echo(**kwargs):\n    return None\n", header=False, api="remote", config={"clients": {"remote": {"url": "http://127.0.0.1:1"}}})
    with pytest.raises(SpecError) as raised:
        load_clients(root)
    assert raised.value.operation == "hello" and raised.value.file.endswith("remote.yaml")
    assert f"the client of API 'remote' {message}" in raised.value.reason


def test_form_fields_are_written_as_the_server_reads_them(services: ServiceMaker) -> None:
    spec = """
paths:
  /form:
    post:
      operationId: send_form
      x-bind-server: HANDLERS.echo
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: name, in: formData, type: string}
        - {name: tags, in: formData, type: array, items: {type: string}, collectionFormat: pipes}
        - {name: ids, in: formData, type: array, items: {type: integer}, collectionFormat: multi}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
"""
    handlers = "def echo(name=None, tags=None, ids=None):\n    return {'name': name, 'tags': tags, 'ids': ids}\n"
    root = services.write(spec, handlers, api="forms", config={"clients": {"forms": {"in_process": True, "serve": True}}})
    services.build(root)
    client = apis.forms.client
    assert client.send_form(name="a&b=c d,é", tags=["x,y", "z"], ids=[1, 2]) == {"name": "a&b=c d,é", "tags": ["x,y", "z"], "ids": [1, 2]}
    with pytest.raises(BadClientRequest, match='contains "\\|", which separates the values of collectionFormat pipes'):
        client.send_form(tags=["x|y"])


def test_cookie_names_go_as_they_are(services: ServiceMaker) -> None:
    spec = """
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /prefs:
    get:
      operationId: prefs
      x-bind-server: HANDLERS.echo
      parameters:
        - {name: "theme!v1", in: cookie, schema: {type: string}}
        - {name: size, in: cookie, schema: {type: object, properties: {"w*": {type: integer}, "h#": {type: integer}}}}
      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, additionalProperties: true}}}}}
"""
    handlers = "from flask import request\ndef echo(theme_v1=None, size=None):\n    return {'theme': theme_v1, 'size': size.to_json(), 'cookie': request.headers['Cookie']}\n"
    root = services.write(spec, handlers, header=False, api="prefs", config={"clients": {"prefs": {"in_process": True, "serve": True}}})
    services.build(root)
    seen = apis.prefs.client.prefs(theme_v1="dark; blue", size={"w*": 3, "h#": 4})
    assert seen == {"theme": "dark; blue", "size": {"w*": 3, "h#": 4}, "cookie": "theme!v1=dark%3B%20blue; w*=3; h#=4"}
