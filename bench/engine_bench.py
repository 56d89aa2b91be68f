"""The engine's cost per request against bare Flask, measured in one run, in process (WSGI calls, no network).

Two endpoints, written twice:
  (a) bare Flask, no validation: jsonify of what it read;
  (b) macaron, with request and response validation and models.
Case 1: GET with a path and two query parameters. Case 2: POST echoing a nested JSON body as a model.
Case 3: the GET with a limit out of range: a 400 Error, fitted to the spec's own Error (no request_id, no errors list).
Then the start-up time of a generated spec with 1,000 operations.

Run: python bench/engine_bench.py [--quick]
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

BODY = {
    "name": "Rex",
    "kind": "dog",
    "age": 4,
    "owner": {"name": "Ann", "email": "ann@example.com", "address": {"street": "1 Main St", "city": "Paris", "zip": "75001"}},
    "tags": ["good", "boy"],
    "vaccinated": True,
}
BODY_BYTES = json.dumps(BODY).encode()

SPEC = """
swagger: '2.0'
info: {title: bench, version: '1'}
produces: [application/json]
consumes: [application/json]
paths:
  /items/{item_id}:
    get:
      operationId: getItem
      x-bind-server: bench_handlers.get_item
      parameters:
        - {name: item_id, in: path, required: true, type: integer, format: int64}
        - {name: limit, in: query, type: integer, minimum: 1, maximum: 100, default: 10}
        - {name: q, in: query, type: string}
      responses:
        200:
          description: ok
          schema: {$ref: '#/definitions/Item'}
        default:
          description: error
          schema: {$ref: '#/definitions/Error'}
  /pets:
    post:
      operationId: echoPet
      x-bind-server: bench_handlers.echo_pet
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses:
        200:
          description: ok
          schema: {$ref: '#/definitions/Pet'}
        default:
          description: error
          schema: {$ref: '#/definitions/Error'}
definitions:
  Error:  # a service's own Error, without request_id or the errors list: macaron's bodies are fitted to it
    type: object
    required: [status, error, error_description]
    properties:
      status: {type: integer}
      error: {type: string}
      error_description: {type: string}
      error_id: {type: string}
      user_message: {type: string}
  Item:
    type: object
    required: [id, limit]
    properties:
      id: {type: integer, format: int64}
      limit: {type: integer}
      q: {type: string}
  Pet:
    type: object
    required: [name, kind, owner]
    properties:
      name: {type: string, maxLength: 50}
      kind: {type: string, enum: [dog, cat, bird]}
      age: {type: integer, minimum: 0}
      owner: {$ref: '#/definitions/Owner'}
      tags: {type: array, items: {type: string}}
      vaccinated: {type: boolean}
  Owner:
    type: object
    required: [name]
    properties:
      name: {type: string}
      email: {type: string}
      address:
        type: object
        properties:
          street: {type: string}
          city: {type: string}
          zip: {type: string, pattern: '^[0-9]{5}$'}
"""

HANDLERS = '''
def get_item(item_id, limit, q):
    return {"id": item_id, "limit": limit, "q": q} if q is not None else {"id": item_id, "limit": limit}


def echo_pet(pet):
    return pet
'''


def bad_limit(limit: int) -> dict[str, Any]:
    """The 400 the bare apps answer for a limit out of range: the same fields macaron sends for that Error."""
    return {"status": 400, "error": "INVALID_PARAMETER", "error_description": f"1 problem in the request: /query/limit: {limit} is greater than the maximum of 100", "error_id": "0" * 32}


def bare_flask() -> Flask:
    app = Flask("bare")

    @app.get("/items/<int:item_id>")
    def get_item(item_id: int) -> Any:
        limit = request.args.get("limit", 10, type=int)
        q = request.args.get("q")
        if not 1 <= limit <= 100:
            return jsonify(bad_limit(limit)), 400
        return jsonify({"id": item_id, "limit": limit, "q": q} if q is not None else {"id": item_id, "limit": limit})

    @app.post("/pets")
    def echo_pet() -> Any:
        return jsonify(request.get_json())

    return app


def orjson_flask() -> Flask:
    """Bare Flask again, but serialising with orjson as macaron does: shows what validation itself costs."""
    import orjson
    from flask import Response

    app = Flask("bare_orjson")

    @app.get("/items/<int:item_id>")
    def get_item(item_id: int) -> Any:
        limit = request.args.get("limit", 10, type=int)
        q = request.args.get("q")
        if not 1 <= limit <= 100:
            return Response(orjson.dumps(bad_limit(limit)), status=400, mimetype="application/json")
        data = {"id": item_id, "limit": limit, "q": q} if q is not None else {"id": item_id, "limit": limit}
        return Response(orjson.dumps(data), mimetype="application/json")

    @app.post("/pets")
    def echo_pet() -> Any:
        return Response(orjson.dumps(orjson.loads(request.get_data())), mimetype="application/json")

    return app


def macaron_app(folder: Path) -> Any:
    (folder / "apis").mkdir()
    (folder / "apis" / "bench.yaml").write_text(SPEC)
    (folder / "bench_handlers.py").write_text(HANDLERS)
    (folder / "macaron.yaml").write_text("name: bench\n")
    from macaron import create_app
    from macaron.plugins import get_plugin_manager

    return create_app(folder, plugin_manager=get_plugin_manager(load_entrypoints=False))


def environ(method: str, path: str, query: str = "", body: bytes = b"") -> Callable[[], dict[str, Any]]:
    base = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1",
    }
    if body:
        base["CONTENT_TYPE"] = "application/json"
        base["CONTENT_LENGTH"] = str(len(body))

    def make() -> dict[str, Any]:
        env = dict(base)
        env["wsgi.input"] = io.BytesIO(body)
        return env

    return make


def call(app: Any, make_environ: Callable[[], dict[str, Any]]) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, headers: Any, exc_info: Any = None) -> None:
        status.append(s)

    chunks = app(make_environ(), start_response)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0], body


def per_request_us(apps: list[tuple[Any, Callable[[], dict[str, Any]]]], count: int, rounds: int) -> list[float]:
    """Microseconds per request for each app, timed in interleaved rounds; the best round counts.

    Interleaving spreads whatever else the machine does over every app alike, and
    the fastest round is the one least disturbed by it.
    """
    for app, make_environ in apps:
        for _ in range(300):
            call(app, make_environ)
    best = [float("inf")] * len(apps)
    for _ in range(rounds):
        for index, (app, make_environ) in enumerate(apps):
            start = time.perf_counter()
            for _ in range(count):
                call(app, make_environ)
            best[index] = min(best[index], (time.perf_counter() - start) / count * 1e6)
    return best


def startup_seconds(operations: int = 1000) -> float:
    paths = []
    for index in range(operations // 2):
        paths.append(
            textwrap.dedent(
                f"""\
                  /things{index}/{{thing_id}}:
                    get:
                      operationId: get{index}
                      x-bind-server: gen_handlers.get_thing
                      parameters:
                        - {{name: thing_id, in: path, required: true, type: integer}}
                        - {{name: q, in: query, type: string}}
                      responses:
                        200: {{description: ok, schema: {{$ref: '#/definitions/Thing{index % 50}'}}}}
                    post:
                      operationId: post{index}
                      x-bind-server: gen_handlers.post_thing
                      parameters:
                        - {{name: thing_id, in: path, required: true, type: integer}}
                        - {{name: body, in: body, required: true, schema: {{$ref: '#/definitions/Thing{index % 50}'}}}}
                      responses:
                        200: {{description: ok, schema: {{$ref: '#/definitions/Thing{index % 50}'}}}}
                """
            )
        )
    definitions = "".join(
        f"  Thing{i}:\n    type: object\n    required: [name]\n    properties:\n      name: {{type: string}}\n"
        f"      size: {{type: integer}}\n      tags: {{type: array, items: {{type: string}}}}\n"
        f"      parent: {{$ref: '#/definitions/Thing{(i + 1) % 50}'}}\n"
        for i in range(50)
    )
    spec = "swagger: '2.0'\ninfo: {title: big, version: '1'}\npaths:\n" + textwrap.indent("".join(paths), "  ") + "definitions:\n" + definitions
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "apis").mkdir()
        (folder / "apis" / "big.yaml").write_text(spec)
        (folder / "gen_handlers.py").write_text("def get_thing(thing_id, q):\n    return {'name': str(thing_id)}\n\n\ndef post_thing(body, thing_id):\n    return body\n")
        (folder / "macaron.yaml").write_text("name: big\n")
        from macaron import create_app, service_of
        from macaron.plugins import get_plugin_manager

        start = time.perf_counter()
        app = create_app(folder, plugin_manager=get_plugin_manager(load_entrypoints=False))
        elapsed = time.perf_counter() - start
        count = sum(len(api.operations) for api in service_of(app).apis.values())
        assert count >= operations, count
        return elapsed


def main(argv: list[str]) -> dict[str, float]:
    quick = "--quick" in argv
    count, runs = (500, 5) if quick else (1000, 15)
    bare = bare_flask()
    fast = orjson_flask()
    with tempfile.TemporaryDirectory() as tmp:
        mac = macaron_app(Path(tmp))
        cases = {
            "GET path+query": (environ("GET", "/items/42", "limit=5&q=abc"), environ("GET", "/items/42", "limit=5&q=abc")),
            "POST nested body echo": (environ("POST", "/pets", body=BODY_BYTES), environ("POST", "/pets", body=BODY_BYTES)),
            "GET invalid query (400)": (environ("GET", "/items/42", "limit=500"), environ("GET", "/items/42", "limit=500")),
        }
        results: dict[str, float] = {}
        for name, (bare_env, mac_env) in cases.items():
            bare_status, _ = call(bare, bare_env)
            mac_status, mac_body = call(mac, mac_env)
            expected = "400" if "(400)" in name else "200"
            assert bare_status.startswith(expected) and mac_status.startswith(expected), (bare_status, mac_status, mac_body)
            # Interleave to spread machine noise over both sides.
            bare_us, fast_us, mac_us = per_request_us([(bare, bare_env), (fast, bare_env), (mac, mac_env)], count, runs)
            results[name] = mac_us / bare_us
            results[name + " vs orjson Flask"] = mac_us / fast_us
            print(
                f"{name:24s} bare Flask {bare_us:6.1f} us | Flask+orjson {fast_us:6.1f} us | macaron {mac_us:6.1f} us"
                f" | ratio {mac_us / bare_us:4.2f}x bare ({'an error: no target' if expected == '400' else 'target <= 1.25x'}), {mac_us / fast_us:4.2f}x Flask+orjson"
            )
    seconds = min(startup_seconds() for _ in range(1 if quick else 3))
    results["startup 1000 ops (s)"] = seconds
    print(f"{'start-up, 1,000 operations':24s} {seconds:.3f} s (target <= 1 s)")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
