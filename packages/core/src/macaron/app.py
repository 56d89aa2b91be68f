"""Start-up: a service folder in, a Flask app out, with every route bound and checked.

Two steps, both public: :func:`load_service` reads the config, the specs, builds the
models and gives persisted ones their backend, importing no handler; :func:`bind_service`
imports and binds the handlers and returns the Flask app. :func:`create_app` is both.
A command that needs what a service serves but not its code (``macaron dynamodb
create-tables``, a contract run) stops after the first.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, has_request_context, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from macaron.config import load_config, set_config
from macaron.dispatch import MacaronFlask
from macaron.endpoint import Endpoint
from macaron.error_bodies import FitFor, unrouted_fit, unrouted_fits
from macaron.errors import HTTP_ERRORS, BadResponse, HTTPError, MacaronException, ServerError
from macaron.importing import DottedPathError, import_object
from macaron.model_factory import ModelFactory
from macaron.models import apis
from macaron.plugins import MacaronPluginManager
from macaron.plugins import pm as default_pm
from macaron.preparing import engine_setting as engine_setting
from macaron.preparing import prepare_api
from macaron.service import EXTENSION, Service, current_service, service_of
from macaron.spec import Operation, SpecError
from macaron.startup import StartupError

log = logging.getLogger("macaron")

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_MAX_BODY = 10 * 1024 * 1024


__all__ = ["Service", "StartupError", "bind_service", "create_app", "current_service", "load_service", "service_of"]


def _import_callable(dotted: str, operation: Operation, what: str) -> Callable[..., Any]:
    try:
        target: Callable[..., Any] = import_object(dotted, function=True)
    except DottedPathError as exc:
        raise operation.error(exc.describe(what)) from exc
    return target


class LazyRule(Rule):
    """A werkzeug Rule that compiles its URL builder on first use instead of at start-up.

    Werkzeug generates and compiles Python code for url_for() for every rule as it
    is added: half the start-up time of a 1,000-operation spec, for a function an
    API service rarely calls.
    """

    def _compile_builder(self, append_unknown: bool = True) -> Any:
        compiled: Any = None

        def build(rule: Rule, *args: Any, **kwargs: Any) -> Any:
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)

        return build


def _check_signature(handler: Callable[..., Any], operation: Operation) -> None:
    """A handler that cannot take the operation's arguments would fail on every request: say so now."""
    body = tuple(p.name for p in operation.parameters if p.location == "body")
    names = tuple(p.python_name for p in operation.parameters if p.location != "body")
    try:
        problem = _call_problem(handler, len(body), names)
    except TypeError:  # an unhashable callable: checked uncached
        problem = _call_problem.__wrapped__(handler, len(body), names)
    if problem:
        expected = ", ".join([*(f"{name} (the body, first)" for name in body), *names]) or "no arguments"
        raise operation.error(f"handler '{operation.handler}' cannot be called with the operation's arguments ({expected}): {problem}")


@functools.lru_cache(maxsize=4096)  # generated or shared handlers serve many operations
def _call_problem(handler: Callable[..., Any], positional: int, names: tuple[str, ...]) -> str | None:
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # a builtin or a callable object without one: trust it
        return None
    try:
        signature.bind(*[None] * positional, **dict.fromkeys(names))
    except TypeError as exc:
        return str(exc)
    return None


def flask_rule(operation: Operation) -> str:
    names = {p.name: p.python_name for p in operation.parameters if p.location == "path"}
    return re.sub(r"{([^}/]+)}", lambda m: f"<{names[m.group(1)]}>", operation.path)


def spec_files(root: Path) -> list[Path]:
    folder = root / "apis"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())


def load_apis(service: Service, pm: MacaronPluginManager) -> None:
    """Load every spec the service serves, and build its models."""
    from macaron.client import client_only_apis

    calls_only = client_only_apis(service.config)
    files = [file for file in spec_files(service.root) if file.stem not in calls_only]
    for extra in pm.hook.register_apis(config=service.config):
        files.extend(Path(p) for p in extra or ())
    if not files:
        raise StartupError(f"{service.root}: no spec to serve (put Swagger files in {service.root / 'apis'})")
    engine_setting(service.config, "reject_unknown_fields", True, bool)  # a wrong one stops start-up before any spec is read
    loaded = [(file, pm.hook.load_spec(path=file, config=service.config)) for file in files]
    included = {path.resolve() for _, api in loaded if api is not None for path in api.includes}
    for file, api in loaded:
        if api is None:
            if file.resolve() in included:
                continue  # definitions or parameters that the specs $ref, not an API
            raise SpecError(file, "/", "no plugin can load this spec (the built-in loaders read Swagger 2.0, 'swagger: \"2.0\"', and OpenAPI 3.0/3.1, 'openapi: 3.0.3')")
        if api.name in service.apis:
            raise SpecError(file, "/", f"an API named '{api.name}' is already loaded from {service.apis[api.name].file}")
        prepare_api(api, service.config)
        service.apis[api.name] = api
        factory = service.factories[api.name] = ModelFactory(api)
        models = factory.build()
        apis._add(models)
        for name, schema in api.definitions.items():
            if schema.get("x-persist") is None:
                continue
            model = getattr(models, name)
            if not pm.hook.persist_model(model=model, definition=schema, api=api, config=service.config):
                raise SpecError(api.file, f"/definitions/{name}/x-persist", "no installed plugin persists models (install macaron-dynamodb?)")


def bind(service: Service, app: Flask, pm: MacaronPluginManager) -> None:
    """Give every operation its handler, decorators and route."""
    routes: dict[tuple[str, str], Operation] = {}
    for api in service.apis.values():
        factory = service.factories[api.name]
        for operation in api.operations:
            # /items/{id} and /items/{key} are one route to Flask: the second would never be reached.
            route = (operation.method, re.sub(r"{[^}/]+}", "{}", operation.path))
            other = routes.setdefault(route, operation)
            if other is not operation:
                raise operation.error(f"{operation.method.upper()} {operation.path} is already served by operation {other.name} of {other.file}")
            handler = _import_callable(operation.handler or "", operation, "handler")
            _check_signature(handler, operation)
            for dotted in operation.decorators:
                handler = _import_callable(dotted, operation, "decorator")(handler)
            for decorator in pm.hook.wrap_endpoint(handler=handler, operation=operation, config=service.config):
                if decorator is not None:
                    handler = decorator(handler)
            endpoint = Endpoint(operation, handler, factory, api.definitions, error_response)
            service.endpoints.append(endpoint)
            app.add_url_rule(
                flask_rule(operation),
                endpoint=f"{api.name}:{operation.method}:{operation.path}",
                view_func=endpoint,
                methods=[operation.method.upper()],
            )


def error_response(exc: BaseException, operation: Operation | None, fit_for: FitFor | None = None) -> Response:
    """The Error response for any exception, after the on_error hooks have seen it.

    The hooks (and crash reports) see the full body; what is sent is fitted to the schema the operation
    declares for the status (``fit_for``, see macaron.error_bodies); with no operation, to the API's ``Error``.
    """
    if isinstance(exc, MacaronException):
        error = exc
    elif isinstance(exc, HTTPException):
        cls = HTTP_ERRORS.get(exc.code or 500)
        error = cls(exc.description or "") if cls is not None else HTTPError(exc.code or 500, exc.name, exc.description or "")
    else:
        error = ServerError("An unexpected error happened on the server")
        error.__cause__ = exc
    body = error.to_error()
    where = operation.name if operation is not None else "no operation"
    if body["status"] >= 500:
        detail = exc.detail if isinstance(exc, BadResponse) else repr(exc)
        log.error("%s %s in %s: %s", body["error"], body["error_id"], where, detail, exc_info=exc if not isinstance(exc, MacaronException) else None)
    service: Service | None
    try:
        service = current_service()
    except (RuntimeError, KeyError):
        service = None
    pm = service.plugin_manager if service is not None else None
    status = body["status"]
    if pm is not None:
        try:
            pm.hook.on_error(error=body, exception=exc, operation=operation)
        except Exception:
            log.exception("an on_error hook failed for error %s", body["error_id"])
        body["status"] = status
    if fit_for is not None:
        fit = fit_for(status)
    else:  # no operation (404, 405, errors outside the endpoints): the Error of the API the path is under
        fit = unrouted_fit(service.unrouted_fits, request.path) if service is not None and service.unrouted_fits and has_request_context() else None
    if fit is not None:
        body = fit(body)
    headers = getattr(error, "headers", None)  # an error may bring its own, e.g. WWW-Authenticate on a 401
    if isinstance(exc, HTTPException) and exc.code == 405:
        allowed = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else None
    return Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def load_service(path: str | os.PathLike[str] = ".", env: str | None = None, plugin_manager: MacaronPluginManager | None = None) -> Service:
    """The service in folder ``path``, loaded as the server loads it, with no handler imported.

    Reads ``macaron.yaml`` (and the ``env`` overlay) and makes it the current config,
    loads every spec the service serves (those in ``apis/`` but the client-only ones,
    and those plugins register; a file only ``$ref``'d by the others is not an API),
    closes their objects unless unknown fields are accepted, builds the models and has
    plugins persist the ``x-persist`` ones. Any problem is a :class:`StartupError`
    (a SpecError or ConfigError) whose message says what and where.
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise StartupError(f"{root}: no such service folder")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # handlers, x-parent and x-persist classes live in the service's packages
    config = load_config(root, env)
    set_config(config)
    engine_setting(config, "max_body_size", DEFAULT_MAX_BODY, int)
    pm = plugin_manager or default_pm()
    service = Service(root=root, config=config, plugin_manager=pm)
    load_apis(service, pm)
    return service


def bind_service(service: Service) -> Flask:
    """The Flask app of a loaded service: every handler imported and routed, clients built, startup hooks run."""
    if service.app is not None:
        raise StartupError(f"{service.root}: this service is already bound to an app")
    config = service.config
    pm = service.plugin_manager or default_pm()
    app = MacaronFlask(str(config.get("name", "macaron")), root_path=str(service.root), static_folder=None)
    if hasattr(Rule, "_compile_builder"):  # a private werkzeug method: keep working if it goes away
        app.url_rule_class = LazyRule
    app.config["MAX_CONTENT_LENGTH"] = engine_setting(config, "max_body_size", DEFAULT_MAX_BODY, int)
    app.extensions[EXTENSION] = service
    service.app = app
    bind(service, app, pm)
    service.unrouted_fits = unrouted_fits(service.apis)
    from macaron.client import build_clients

    build_clients(config, pm, {name: (api, service.factories[name]) for name, api in service.apis.items()}, app)
    app.register_error_handler(HTTPException, lambda exc: error_response(exc, None))
    app.register_error_handler(Exception, lambda exc: error_response(exc, None))
    pm.hook.startup(app=app, config=config)
    return app


def create_app(path: str | os.PathLike[str] = ".", env: str | None = None, plugin_manager: MacaronPluginManager | None = None) -> Flask:
    """The Flask app of the service in folder ``path``: :func:`load_service`, then :func:`bind_service`.

    Any problem is raised here, at start-up, as a :class:`StartupError` (a SpecError,
    ConfigError or StartupError proper) whose message says what and where.
    """
    return bind_service(load_service(path, env, plugin_manager))
