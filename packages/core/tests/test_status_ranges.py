"""OpenAPI 3 response ranges (2XX, 4XX, 5XX): an exact status wins over its range, a range over default."""

from __future__ import annotations

from typing import Any

import pytest

from macaron.client import BadRemoteResponse
from service_maker import ServiceMaker

SPEC = """
openapi: 3.0.3
info: {title: ranges, version: '1'}
paths:
  /answer/{status}:
    get:
      operationId: HANDLERS.answer
      parameters:
        - {name: status, in: path, required: true, schema: {type: integer}}
        - {name: shape, in: query, schema: {type: string, default: right}}
      responses:
        2XX: {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/Done'}}}}
        '404': {description: exact, content: {application/json: {schema: {type: object, required: [missing], properties: {missing: {type: string}}}}}}
        4XX: {description: range, content: {application/json: {schema: {type: object, required: [problem], properties: {problem: {type: string}}}}}}
        default: {description: other, content: {application/json: {schema: {type: object, required: [other], properties: {other: {type: string}}}}}}
components:
  schemas:
    Done:
      type: object
      required: [done]
      properties: {done: {type: boolean}}
"""

HANDLERS = """
BODIES = {2: {"done": True}, 4: {"problem": "p"}}

def answer(status, shape):
    if status == 404:
        body = {"missing": "m"}
    else:
        body = BODIES.get(status // 100, {"other": "o"})
    if shape == "wrong":
        body = {"unexpected": 1}
    return body, status
"""


@pytest.fixture
def client(services: ServiceMaker) -> Any:
    return services.client(SPEC, HANDLERS, header=False)


@pytest.mark.parametrize(("status", "body"), [(201, {"done": True}), (404, {"missing": "m"}), (418, {"problem": "p"}), (503, {"other": "o"})])
def test_a_status_is_checked_against_its_exact_code_else_its_range_else_default(client: Any, status: int, body: dict[str, Any]) -> None:
    response = client.get(f"/answer/{status}")
    assert response.status_code == status
    assert response.get_json() == body


@pytest.mark.parametrize("status", [202, 404, 409, 500])
def test_a_body_breaking_the_schema_that_covers_its_status_is_a_500(client: Any, status: int) -> None:
    assert client.get(f"/answer/{status}?shape=wrong").status_code == 500


@pytest.mark.parametrize("code", ["2xx", "2X0"])
def test_a_range_is_one_digit_and_upper_case_xx(services: ServiceMaker, code: str) -> None:
    from macaron.spec import SpecError

    # OpenAPI 3's own schema (which every document is checked against) takes the upper-case X only.
    root = services.write(SPEC.replace("2XX:", f"'{code}':"), HANDLERS, header=False)
    with pytest.raises(SpecError, match=f"'{code}' was unexpected"):
        services.build(root)


def test_the_client_reads_a_status_by_its_range(services: ServiceMaker) -> None:
    from macaron import apis

    root = services.write(SPEC, HANDLERS, header=False, config={"clients": {"x": {"in_process": True, "serve": True}}})
    services.build(root)
    done = apis.x.client.answer(status=201)
    assert type(done).__name__ == "Done" and done.done is True  # converted by the 2XX schema's model
    assert apis.x.client.answer(status=418, _raise=False).problem == "p"  # read by the 4XX schema
    # A remote answering a 2xx body its range does not allow (the serving side above would not send one).
    with pytest.raises(BadRemoteResponse, match="202 body that breaks the spec"):
        apis.x.client.answer.result(202, b'{"unexpected": 1}', "http://remote/answer/202", True)
