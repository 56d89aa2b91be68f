"""OpenAPI 3 parameters outside the body: cookies, and every style of the serialization table, read through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from macaron.spec import SpecError
from service_maker import ServiceMaker

ECHO = """
from macaron.models import to_wire

def echo(**arguments):
    # The type tells a model (an object parameter) from plain data.
    return {name: [type(value).__name__, to_wire(value)] for name, value in arguments.items() if value is not None}
"""

RESPONSES = "{'200': {description: ok, content: {application/json: {schema: {type: object, additionalProperties: true}}}}}"


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json
    return {problem["field"]: problem["message"] for problem in response.json["errors"]}


# -- cookies ---------------------------------------------------------------------------

COOKIES = f"""
openapi: 3.1.0
info: {{title: t, version: '1'}}
paths:
  /session:
    get:
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: sid, in: cookie, required: true, schema: {{type: string, minLength: 4}}}}
        - {{name: theme, in: cookie, schema: {{type: string, enum: [dark, light], default: light}}}}
        - {{name: visits, in: cookie, schema: {{type: integer}}}}
        - {{name: ids, in: cookie, explode: false, schema: {{type: array, items: {{type: integer}}}}}}
        - {{name: prefs, in: cookie, explode: false, schema: {{type: object, properties: {{lang: {{type: string}}, size: {{type: integer}}}}}}}}
      responses: {RESPONSES}
"""


@pytest.fixture
def cookies(services: ServiceMaker) -> Any:
    # The test client's own cookie jar would replace a Cookie header: the tests write the header themselves.
    return services.app(COOKIES, ECHO, header=False).test_client(use_cookies=False)


def test_cookie_parameters_arrive_typed_with_their_defaults(cookies: Any) -> None:
    response = cookies.get("/session", headers={"Cookie": "sid=abcd; visits=3; ids=1,2; prefs=lang,en,size,2"})
    assert response.status_code == 200, response.json
    assert response.json == {
        "sid": ["str", "abcd"],
        "theme": ["str", "light"],
        "visits": ["int", 3],
        "ids": ["list", [1, 2]],
        "prefs": ["InlineObject", {"lang": "en", "size": 2}],
    }


def test_a_missing_or_wrong_cookie_is_a_400_naming_it(cookies: Any) -> None:
    assert errors_of(cookies.get("/session")) == {"/cookie/sid": "is required"}
    response = cookies.get("/session", headers={"Cookie": "sid=ab; theme=blue; visits=many; ids=1,x; prefs=lang,en,size"})
    assert errors_of(response) == {
        "/cookie/sid": '"ab" is shorter than 4 characters',
        "/cookie/theme": '"blue" is not one of "dark", "light"',
        "/cookie/visits": '"many" is not of type "integer"',
        "/cookie/ids/1": '"x" is not of type "integer"',
        "/cookie/prefs": '"lang,en,size" is not in form style: an object is written as name,value pairs',
    }


# -- query and header ------------------------------------------------------------------

QUERY = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /search:
    get:
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: filter, in: query, style: deepObject, explode: true, schema: {{$ref: '#/components/schemas/Filter'}}}}
        - {{name: point, in: query, explode: false, schema: {{type: object, properties: {{x: {{type: integer}}, y: {{type: integer}}}}}}}}
        - {{name: page, in: query, schema: {{type: object, properties: {{offset: {{type: integer}}, limit: {{type: integer}}}}}}}}
        - {{name: box, in: query, style: pipeDelimited, schema: {{type: object, additionalProperties: {{type: integer}}}}}}
        - {{name: area, in: query, style: spaceDelimited, schema: {{type: object, properties: {{w: {{type: number}}, h: {{type: number}}}}}}}}
        - {{name: ids, in: query, style: spaceDelimited, explode: false, schema: {{type: array, items: {{type: integer}}}}}}
        - {{name: X-Size, in: header, explode: true, schema: {{type: object, properties: {{w: {{type: integer}}, h: {{type: integer}}}}}}}}
        - {{name: X-Pair, in: header, schema: {{type: object, properties: {{a: {{type: boolean}}, b: {{type: string}}}}}}}}
        - {{name: X-Ids, in: header, schema: {{type: array, items: {{type: integer}}}}}}
      responses: {RESPONSES}
components:
  schemas:
    Filter:
      type: object
      properties:
        color: {{type: string}}
        size: {{type: integer}}
        tags: {{type: array, items: {{type: string}}}}
"""


@pytest.fixture
def search(services: ServiceMaker) -> Any:
    return services.client(QUERY, ECHO, header=False)


def test_deep_object_query_parameters_are_typed_by_their_schema(search: Any) -> None:
    response = search.get("/search?filter[color]=red&filter[size]=2&filter[tags]=a&filter[tags]=b")
    assert response.status_code == 200, response.json
    assert response.json == {"filter": ["Filter", {"color": "red", "size": 2, "tags": ["a", "b"]}]}  # a $ref is its model


def test_deep_object_problems_name_the_property(search: Any) -> None:
    assert errors_of(search.get("/search?filter[size]=big&filter[colour]=red")) == {
        "/query/filter/size": '"big" is not of type "integer"',
        "/query/filter/colour": "is not allowed here (unknown field)",
    }
    assert errors_of(search.get("/search?filter[a][b]=1")) == {"/query/filter": '"filter[a][b]": a deepObject parameter has one level of names (filter[name]=value)'}


def test_object_query_parameters_in_form_pipe_and_space_styles(search: Any) -> None:
    response = search.get("/search?point=x,1,y,2&offset=3&limit=5&box=w|3|h|4&area=w%201.5%20h%202&ids=1%202")
    assert response.status_code == 200, response.json
    assert response.json == {
        "point": ["InlineObject", {"x": 1, "y": 2}],
        "page": ["InlineObject", {"offset": 3, "limit": 5}],  # form, exploded: the properties are parameters of their own
        "box": ["dict", {"w": 3, "h": 4}],
        "area": ["InlineObject", {"w": 1.5, "h": 2}],
        "ids": ["list", [1, 2]],
    }
    assert errors_of(search.get("/search?point=x,1,y&offset=first")) == {
        "/query/point": '"x,1,y" is not in form style: an object is written as name,value pairs',
        "/query/page/offset": '"first" is not of type "integer"',
    }


def test_header_objects_and_arrays_in_simple_style(search: Any) -> None:
    response = search.get("/search", headers={"X-Size": "w=3,h=4", "X-Pair": "a,true,b,x", "X-Ids": "1,2"})
    assert response.status_code == 200, response.json
    assert response.json == {"x_size": ["InlineObject", {"w": 3, "h": 4}], "x_pair": ["InlineObject", {"a": True, "b": "x"}], "x_ids": ["list", [1, 2]]}
    assert errors_of(search.get("/search", headers={"X-Size": "w3"})) == {"/header/X-Size": '"w3" is not in simple style (exploded object): "w3" is not name=value'}


# -- path: simple, label, matrix; primitive, array, object; explode false and true -----

SHAPES = {
    "primitive": "{type: integer}",
    "array": "{type: array, items: {type: integer}}",
    "object": "{type: object, properties: {R: {type: integer}, G: {type: integer}}}",
}


def path_spec() -> str:
    paths = "".join(
        f"""
  /{style}/{shape}/{explode}/{{v}}:
    get:
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: v, in: path, required: true, style: {style}, explode: {explode}, schema: {schema}}}
      responses: {RESPONSES}"""
        for style in ("simple", "label", "matrix")
        for shape, schema in SHAPES.items()
        for explode in ("false", "true")
    )
    return f"openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths:{paths}\n"


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Any:
    maker = ServiceMaker(tmp_path_factory.mktemp("styles"))
    yield maker.client(path_spec(), ECHO, header=False)
    maker.cleanup()


OBJECT = ["InlineObject", {"R": 100, "G": 200}]


@pytest.mark.parametrize(
    ("route", "text", "value"),
    [
        ("simple/primitive/false", "5", ["int", 5]),
        ("simple/primitive/true", "5", ["int", 5]),
        ("simple/array/false", "3,4,5", ["list", [3, 4, 5]]),
        ("simple/array/true", "3,4,5", ["list", [3, 4, 5]]),
        ("simple/object/false", "R,100,G,200", OBJECT),
        ("simple/object/true", "R=100,G=200", OBJECT),
        ("label/primitive/false", ".5", ["int", 5]),
        ("label/primitive/true", ".5", ["int", 5]),
        ("label/array/false", ".3,4,5", ["list", [3, 4, 5]]),
        ("label/array/true", ".3.4.5", ["list", [3, 4, 5]]),
        ("label/object/false", ".R,100,G,200", OBJECT),
        ("label/object/true", ".R=100.G=200", OBJECT),
        ("matrix/primitive/false", ";v=5", ["int", 5]),
        ("matrix/primitive/true", ";v=5", ["int", 5]),
        ("matrix/array/false", ";v=3,4,5", ["list", [3, 4, 5]]),
        ("matrix/array/true", ";v=3;v=4;v=5", ["list", [3, 4, 5]]),
        ("matrix/object/false", ";v=R,100,G,200", OBJECT),
        ("matrix/object/true", ";R=100;G=200", OBJECT),
    ],
)
def test_every_path_style_is_read(paths: Any, route: str, text: str, value: list[Any]) -> None:
    response = paths.get(f"/{route}/{text}")
    assert response.status_code == 200, response.json
    assert response.json == {"v": value}


@pytest.mark.parametrize(
    ("route", "text", "message"),
    [
        ("label/primitive/false", "5", '"5" is not in label style: expected .<value>'),
        ("matrix/primitive/false", "5", '"5" is not in matrix style: expected ;v=<value>'),
        ("matrix/primitive/true", ";w=5", '";w=5" is not in matrix style: expected ;v=<value>'),
        ("matrix/array/true", ";v=3;w=4", '";w=4" is not in matrix style: expected ;v=<value>'),
        ("matrix/object/false", ";v=R,100,G", '";v=R,100,G" is not in matrix style: an object is written as name,value pairs'),
        ("label/object/true", ".R100", '".R100" is not in label style (exploded object): "R100" is not name=value'),
        ("matrix/primitive/false", ";v=x", '"x" is not of type "integer"'),
        ("label/array/true", ".3.x", '"x" is not of type "integer"'),
    ],
)
def test_text_a_path_style_cannot_read_is_a_400_naming_the_parameter(paths: Any, route: str, text: str, message: str) -> None:
    problems = errors_of(paths.get(f"/{route}/{text}"))
    assert list(problems.values()) == [message]
    assert next(iter(problems)).startswith("/path/v")


def test_an_unknown_property_of_an_object_parameter_is_refused(paths: Any) -> None:
    assert errors_of(paths.get("/simple/object/true/R=1,B=2")) == {"/path/v/B": "is not allowed here (unknown field)"}


SWAGGER_PATH_ARRAY = """
paths:
  /items/{ids}:
    get:
      x-bind-server: HANDLERS.echo
      parameters:
        - {name: ids, in: path, required: true, type: array, items: {type: integer}, collectionFormat: pipes}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
"""


def test_a_swagger_path_array_is_split_by_its_collection_format(services: ServiceMaker) -> None:
    client = services.client(SWAGGER_PATH_ARRAY, ECHO)
    assert client.get("/items/1|2").json == {"ids": ["list", [1, 2]]}
    assert errors_of(client.get("/items/1|x")) == {"/path/ids/1": '"x" is not of type "integer"'}


# -- refused at start-up ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("{name: q, in: query, style: deepObject, explode: false, schema: {type: object, properties: {a: {type: string}}}}", "deepObject is for objects, with explode true"),
        ("{name: q, in: query, style: pipeDelimited, schema: {type: integer}}", "pipeDelimited is for arrays and objects, with explode false"),
        ("{name: q, in: query, style: spaceDelimited, explode: true, schema: {type: array, items: {type: string}}}", "spaceDelimited is for arrays and objects, with explode false"),
        ("{name: q, in: query, schema: {type: object, additionalProperties: {type: string}}}", "an exploded form object is read from its properties' names"),
        ("{name: q, in: query, explode: false, schema: {type: object, properties: {a: {type: object}}}}", "its property 'a' is an object"),
        ("{name: q, in: query, explode: false, schema: {type: object, properties: {a: {type: array, items: {type: string}}}}}", "its property 'a' is an array"),
        ("{name: q, in: header, schema: {type: array, items: {type: array, items: {type: string}}}}", "its items are arrays or objects"),
    ],
)
def test_a_parameter_outside_the_serialization_table_stops_start_up(services: ServiceMaker, parameter: str, message: str) -> None:
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
      responses: {RESPONSES}
"""
    root = services.write(spec, ECHO, header=False)
    with pytest.raises(SpecError) as caught:
        services.build(root)
    assert (caught.value.pointer, caught.value.operation) == ("/paths/~1hello/get/parameters/0", "hello")
    assert message in caught.value.reason


MIXED = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /boxes/{{id}}:
    post:
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: id, in: path, required: true, style: matrix, schema: {{type: integer}}}}
        - {{name: size, in: query, required: true, schema: {{type: integer}}}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {{type: object, required: [name], properties: {{name: {{type: string}}}}}}
      responses: {RESPONSES}
"""


def test_unreadable_text_is_reported_with_every_other_problem_of_the_request(services: ServiceMaker) -> None:
    client = services.client(MIXED, ECHO.replace("def echo(**arguments):", "def echo(body=None, **arguments):"), header=False)
    assert errors_of(client.post("/boxes/7?size=big", json={"nom": "x"})) == {
        "/path/id": '"7" is not in matrix style: expected ;id=<value>',
        "/query/size": '"big" is not of type "integer"',
        "/body/name": "is required",
        "/body/nom": "is not allowed here (unknown field)",
    }
    assert errors_of(client.post("/boxes/7", data="{not json", content_type="application/json")) == {
        "/path/id": '"7" is not in matrix style: expected ;id=<value>',
        "/query/size": "is required",
    }


# -- percent-encoding: a delimiter inside a value is sent encoded, the style's own as it is ---------

ENCODED = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /tags/{{tags}}/{{point}}:
    get:
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: tags, in: path, required: true, schema: {{type: array, items: {{type: string}}}}}}
        - {{name: point, in: path, required: true, style: matrix, explode: true, schema: {{type: object, additionalProperties: {{type: string}}}}}}
        - {{name: names, in: query, explode: false, schema: {{type: array, items: {{type: string}}}}}}
        - {{name: label, in: query, schema: {{type: string}}}}
        - {{name: who, in: cookie, schema: {{type: string}}}}
        - {{name: pair, in: cookie, explode: false, schema: {{type: array, items: {{type: string}}}}}}
      responses: {RESPONSES}
"""


def test_encoded_delimiters_stay_in_their_values(services: ServiceMaker) -> None:
    client = services.app(ENCODED, ECHO, header=False).test_client(use_cookies=False)
    response = client.get("/tags/a%2Cb,c%20d/;x=1%3B2;y%3Dz=3?names=Ann%2C%20Bob,Cy&label=x%2Cy", headers={"Cookie": "who=J%C3%BCrgen%3B%20Jr; pair=a%2Cb,c"})
    assert response.status_code == 200, response.json
    assert response.json == {
        "tags": ["list", ["a,b", "c d"]],
        "point": ["dict", {"x": "1;2", "y=z": "3"}],
        "names": ["list", ["Ann, Bob", "Cy"]],
        "label": ["str", "x,y"],
        "who": ["str", "Jürgen; Jr"],
        "pair": ["list", ["a,b", "c"]],
    }
    # Without an encoded character, what werkzeug decoded is read as before.
    assert client.get("/tags/a,b/;x=1?names=c,d").json == {"tags": ["list", ["a", "b"]], "point": ["dict", {"x": "1"}], "names": ["list", ["c", "d"]]}
    # Without a delimiter as it is, the text was encoded whole (requests' params=, URLSearchParams): decoded, then split.
    response = client.get("/tags/a%2Cb/%3Bx%3D1?names=c%2Cd", headers={"Cookie": "pair=e%2Cf"})
    assert response.json == {"tags": ["list", ["a", "b"]], "point": ["dict", {"x": "1"}], "names": ["list", ["c", "d"]], "pair": ["list", ["e", "f"]]}


def test_two_parameters_read_from_one_name_stop_start_up(services: ServiceMaker) -> None:
    spec = f"""
openapi: 3.0.3
info: {{title: t, version: '1'}}
paths:
  /items:
    get:
      operationId: listItems
      x-bind-server: HANDLERS.echo
      parameters:
        - {{name: page, in: query, schema: {{type: object, properties: {{offset: {{type: integer}}, limit: {{type: integer}}}}}}}}
        - {{name: limit, in: query, schema: {{type: integer}}}}
      responses: {RESPONSES}
"""
    with pytest.raises(SpecError) as caught:
        services.build(services.write(spec, ECHO, header=False))
    assert caught.value.operation == "listItems"
    assert "query parameters 'page' and 'limit' are both read from the name 'limit'" in caught.value.reason


def test_a_swagger_array_of_arrays_outside_the_body_stops_start_up(services: ServiceMaker) -> None:
    spec = """
paths:
  /grid:
    get:
      operationId: grid
      x-bind-server: HANDLERS.echo
      parameters:
        - {name: rows, in: query, type: array, collectionFormat: pipes, items: {type: array, items: {type: integer}}}
      responses:
        200: {description: ok}
"""
    with pytest.raises(SpecError) as caught:
        services.build(services.write(spec, ECHO))
    assert (caught.value.pointer, caught.value.operation) == ("/paths/~1grid/get/parameters/0/items", "grid")
    assert "query parameter 'rows' is an array of arrays" in caught.value.reason
