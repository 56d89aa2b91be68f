"""Built-in ``/docs``: Swagger UI for every API the service serves, from assets installed with macaron.

Routes (added by the ``startup`` hook, so they are not part of any spec):

``/docs``
    Swagger UI, one definition per served API (a selector at the top).
``/docs/<api>.json`` and ``/docs/<api>.yaml``
    The spec of API ``<api>`` as this server serves it: external ``$ref`` files
    bundled in, ``host`` and ``schemes`` dropped (so the spec describes the server
    answering it) and ``basePath`` prefixed by the WSGI mount point, if any.

On unless the config says ``docs: false``; the default is off when the
environment (``--env`` / ``MACARON_ENV``) is ``prod``, ``production`` or ``live``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import orjson
import yaml
from flask import Blueprint, Flask, Response, request, send_file, url_for

from macaron.config import Config, ConfigError
from macaron.documents import bundle
from macaron.errors import NotFound
from macaron.hookspecs import hookimpl
from macaron.spec import Api

PRODUCTION_ENVS = frozenset({"prod", "production", "live"})
INIT_SCRIPT = Path(__file__).with_name("docs-init.js")
PREFIX = "/docs"
BLUEPRINT = "macaron_docs"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title>{title}</title>
<link rel="stylesheet" type="text/css" href="{assets}/swagger-ui.css">
<link rel="stylesheet" type="text/css" href="{assets}/index.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script id="macaron-docs-config" type="application/json">{config}</script>
<script src="{assets}/swagger-ui-bundle.js" charset="UTF-8"></script>
<script src="{assets}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
<script src="{init}" charset="UTF-8"></script>
</body>
</html>
"""


def docs_enabled(config: Config) -> bool:
    """Whether the service serves ``/docs``: config ``docs``, else on everywhere except production."""
    value = config.get("docs")
    if value is None:
        return (config.env or "").lower() not in PRODUCTION_ENVS
    if not isinstance(value, bool):
        raise ConfigError(f"{_config_file(config)}: 'docs' must be true or false, not {value!r}")
    return value


def _config_file(config: Config) -> str:
    return str(config.root / "macaron.yaml") if config.root is not None else "macaron.yaml"


def _swagger_ui_folder() -> Path:
    from macaron.app import StartupError

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError as exc:
        raise StartupError(
            "/docs needs the Swagger UI assets of the package swagger-ui-bundle-v2 (pip install swagger-ui-bundle-v2), "
            "or set 'docs: false' in macaron.yaml"
        ) from exc
    return Path(str(swagger_ui_path))


class SpecDocument:
    """One API's spec, bundled once at start-up, rendered once per mount point."""

    def __init__(self, api: Api) -> None:
        self.api = api
        document = bundle(api.document, api.file)
        document.pop("host", None)
        document.pop("schemes", None)
        self.document = document
        self._rendered: dict[tuple[str, str], bytes] = {}

    def render(self, fmt: str, script_root: str) -> bytes:
        key = (fmt, script_root)
        body = self._rendered.get(key)
        if body is None:
            document = self.document
            if script_root and "swagger" in document:
                document = {**document, "basePath": script_root + (document.get("basePath") or "/").rstrip("/")}
            if fmt == "json":
                body = orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2)
            else:
                body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
            self._rendered[key] = body
        return body


def _page_config(apis: dict[str, SpecDocument]) -> list[dict[str, str]]:
    # The service's own APIs first: Swagger UI opens the first one.
    names = sorted(apis, key=lambda name: (name == "ping", name))
    return [{"name": name, "url": url_for(f"{BLUEPRINT}.spec", api=name, fmt="json")} for name in names]


def make_blueprint(documents: dict[str, SpecDocument], title: str) -> Blueprint:
    blueprint = Blueprint(BLUEPRINT, __name__, static_folder=str(_swagger_ui_folder()), static_url_path="/assets", url_prefix=PREFIX)

    @blueprint.route("", strict_slashes=False, methods=["GET"])
    def page() -> Response:
        urls = _page_config(documents)
        config = json.dumps({"urls": urls, "primary": urls[0]["name"] if urls else None})
        # The JSON sits in a <script> element: '<' must not close it.
        config = config.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        text = PAGE.format(
            title=html.escape(f"{title} API docs"),
            assets=html.escape(url_for(f"{BLUEPRINT}.static", filename="").rstrip("/")),
            init=html.escape(url_for(f"{BLUEPRINT}.init_script")),
            config=config,
        )
        return Response(text, mimetype="text/html")

    @blueprint.route("/macaron-docs.js", methods=["GET"])
    def init_script() -> Response:
        return send_file(INIT_SCRIPT, mimetype="text/javascript", max_age=3600)

    @blueprint.route("/<api>.<any(json, yaml):fmt>", methods=["GET"])
    def spec(api: str, fmt: str) -> Response:
        document = documents.get(api)
        if document is None:
            raise NotFound(f"no API named '{api}'; this service serves: {', '.join(sorted(documents))}")
        mimetype = "application/json" if fmt == "json" else "application/yaml"
        return Response(document.render(fmt, request.script_root), mimetype=mimetype)

    return blueprint


@hookimpl
def startup(app: Flask, config: Config) -> None:
    if not docs_enabled(config):
        return
    from macaron.app import StartupError, service_of

    service = service_of(app)
    for rule in app.url_map.iter_rules():
        if rule.rule == PREFIX or rule.rule.startswith(PREFIX + "/"):
            raise StartupError(
                f"the route {rule.rule} of the service overlaps the built-in {PREFIX} page: "
                f"rename it, or set 'docs: false' in {_config_file(config)}"
            )
    documents = {name: SpecDocument(api) for name, api in service.apis.items()}
    app.register_blueprint(make_blueprint(documents, service.name or app.name))
