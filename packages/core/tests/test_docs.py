"""The built-in /docs page and specs, through Flask's test client (the browser test is tests/test_docs_page.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from flask import Flask

from macaron import create_app
from macaron.app import StartupError
from macaron.config import ConfigError
from macaron.plugins import get_plugin_manager
from service_maker import ServiceMaker

SPEC = """
host: api.example.com
schemes: [https]
basePath: /v2
paths:
  /pets/{id}:
    get:
      summary: One pet.
      operationId: getPet
      x-bind-server: HANDLERS.get_pet
      parameters:
        - {$ref: 'common.yaml#/parameters/PetId'}
      responses:
        200:
          description: The pet.
          schema: {$ref: '#/definitions/Pet'}
        default:
          description: Error
          schema: {$ref: 'common.yaml#/definitions/Error'}
definitions:
  Pet:
    type: object
    properties:
      name: {type: string}
"""

COMMON = """
parameters:
  PetId: {name: id, in: path, required: true, type: integer}
definitions:
  Error:
    type: object
    properties:
      error: {type: string}
      details: {$ref: '#/definitions/Detail'}
  Detail:
    type: object
    properties:
      field: {type: string}
"""

HANDLERS = """
def get_pet(id):
    return {"name": "Rex"}
"""


def make(services: ServiceMaker, config: dict[str, object] | None = None) -> Path:
    return services.write(SPEC, HANDLERS, api="pets", config=config, files={"apis/common.yaml": COMMON})


def build(root: Path, env: str | None = None) -> Flask:
    app = create_app(root, env, plugin_manager=get_plugin_manager(load_entrypoints=False))
    app.testing = True
    return app


def test_page_lists_every_api_and_its_assets_are_served(services: ServiceMaker) -> None:
    client = build(make(services)).test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    config = json.loads(re.search(r'<script id="macaron-docs-config" type="application/json">(.*?)</script>', text).group(1))  # type: ignore[union-attr]
    assert config == {
        "urls": [{"name": "pets", "url": "/docs/pets.json"}, {"name": "ping", "url": "/docs/ping.json"}],
        "primary": "pets",
    }
    # Everything the page loads comes from this server: no CDN, nothing absolute.
    sources = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert len(sources) == 6
    for source in sources:
        assert source.startswith("/docs/"), source
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.get_data()) > 0
    init = client.get("/docs/macaron-docs.js").get_data(as_text=True)
    assert "validatorUrl: null" in init
    assert "http" not in init
    assert client.get("/docs/").status_code == 200


def test_spec_as_json_and_yaml_describes_this_server(services: ServiceMaker) -> None:
    client = build(make(services)).test_client()
    as_json = client.get("/docs/pets.json")
    as_yaml = client.get("/docs/pets.yaml")
    assert as_json.mimetype == "application/json"
    assert as_yaml.mimetype == "application/yaml"
    document = as_json.get_json()
    assert yaml.safe_load(as_yaml.get_data(as_text=True)) == document
    # host and schemes would send "Try it out" to another server.
    assert "host" not in document and "schemes" not in document
    assert document["basePath"] == "/v2"
    assert document["paths"]["/pets/{id}"]["get"]["operationId"] == "getPet"
    # The definition from common.yaml is bundled in, with the one it refers to.
    default = document["paths"]["/pets/{id}"]["get"]["responses"]["default"]
    assert default["schema"] == {"$ref": "#/definitions/Error"}
    assert document["definitions"]["Error"]["properties"]["details"] == {"$ref": "#/definitions/Detail"}
    assert set(document["definitions"]) == {"Pet", "Error", "Detail"}
    # Anything else from another file is inlined.
    assert document["paths"]["/pets/{id}"]["get"]["parameters"] == [{"name": "id", "in": "path", "required": True, "type": "integer"}]
    assert "common.yaml" not in as_json.get_data(as_text=True)


def test_mount_point_prefixes_base_path_and_asset_urls(services: ServiceMaker) -> None:
    client = build(make(services)).test_client()
    mounted = "http://localhost/pets-service/"  # the app mounted at /pets-service (SCRIPT_NAME)
    assert client.get("/docs/pets.json", base_url=mounted).get_json()["basePath"] == "/pets-service/v2"
    assert client.get("/docs/pets.json").get_json()["basePath"] == "/v2"
    page = client.get("/docs", base_url=mounted).get_data(as_text=True)
    assert '"url": "/pets-service/docs/pets.json"' in page
    assert 'src="/pets-service/docs/assets/swagger-ui-bundle.js"' in page


def test_unknown_api_is_a_json_error(services: ServiceMaker) -> None:
    client = build(make(services)).test_client()
    response = client.get("/docs/nope.json")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "NOT_FOUND"
    assert body["error_description"] == "no API named 'nope'; this service serves: pets, ping"
    assert body["error_id"]
    other = client.get("/docs/pets.txt")
    assert other.status_code == 404 and other.get_json()["error"] == "NOT_FOUND"
    post = client.post("/docs")
    assert post.status_code == 405 and post.get_json()["error"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("env", ["prod", "production", "live", "PROD"])
def test_off_in_production(services: ServiceMaker, env: str) -> None:
    client = build(make(services), env).test_client()
    for path in ("/docs", "/docs/pets.json", "/docs/assets/swagger-ui.css"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"] == "NOT_FOUND"
    assert client.get("/ping").status_code == 200


def test_config_switch(services: ServiceMaker) -> None:
    assert build(make(services, {"docs": True}), "production").test_client().get("/docs").status_code == 200
    assert build(make(services, {"docs": False})).test_client().get("/docs").status_code == 404
    assert build(make(services), "staging").test_client().get("/docs").status_code == 200


def test_docs_value_must_be_a_boolean(services: ServiceMaker) -> None:
    root = make(services, {"docs": "yes"})
    with pytest.raises(ConfigError, match=r"macaron\.yaml: 'docs' must be true or false, not 'yes'"):
        build(root)


def test_a_spec_route_under_docs_stops_start_up(services: ServiceMaker) -> None:
    spec = """
    paths:
      /docs/intro:
        get:
          x-bind-server: HANDLERS.intro
          responses:
            200: {description: ok, schema: {type: object}}
    """
    root = services.write(spec, "def intro():\n    return {}\n")
    with pytest.raises(StartupError, match=r"/docs/intro of the service overlaps the built-in /docs page.*docs: false"):
        build(root)
    (root / "macaron.yaml").write_text("name: test-service\ndocs: false\n")
    assert build(root).test_client().get("/docs/intro").status_code == 200
