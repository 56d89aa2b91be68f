"""Clients for the APIs a service calls, built from their specs.

    apis.weather.client.get_forecast(city="Paris")            # -> a Forecast model
    apis.orders.client.create_order(apis.orders.Order(...))   # body first, as on the server

Parameters and body are validated before anything is sent; the response is
validated against the spec and becomes the same model classes the server side
uses. An Error response is raised as a MacaronException carrying the remote
status, code and error_id (pass ``_raise=False`` to get the Error back instead).
The caller's request id, call chain and, when asked, its token travel along.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.datastructures import MultiDict

from macaron import context
from macaron.config import Config, ConfigError
from macaron.errors import MacaronException, error_class
from macaron.model_factory import ModelFactory
from macaron.models import ApiModels, apis, to_wire
from macaron.parameters import MISSING, ParameterReader, media_matches, raw_body_checkers, raw_value, request_schema
from macaron.preparing import prepare_api
from macaron.spec import Api, Operation, Parameter, SpecError, python_name, response_key
from macaron.styles import PROPERTIES, MalformedParameter, TextWriter, Unsendable, members, quoted, resolved
from macaron.validation import Checker, escape
from macaron.variants import response_variant

if TYPE_CHECKING:
    from flask import Flask

    from macaron.plugins import MacaronPluginManager

log = logging.getLogger("macaron.client")

IDEMPOTENT = frozenset({"get", "head", "put", "delete", "options"})
RETRY_STATUSES = frozenset({502, 503, 504})
REQUEST_ID_HEADER = "X-Request-ID"
CALL_CHAIN_HEADER = "X-Call-Chain"


# The fields every Error has; request_id is the remote's, and this service answers with its own.
_ERROR_FIELDS = frozenset({"status", "error", "error_description", "error_id", "user_message", "request_id"})


class RemoteError(MacaronException):
    """An Error answered by the remote service; ``code``, ``status`` and ``error_id`` are the remote's."""

    code = "REMOTE_ERROR"
    status = 502


class RemoteUnavailable(MacaronException):
    """The remote could not be reached (refused, reset, or still failing after the retries)."""

    code = "REMOTE_UNAVAILABLE"
    status = 503


class RemoteTimeout(MacaronException):
    code = "REMOTE_TIMEOUT"
    status = 504


class BadRemoteResponse(MacaronException):
    """The remote answered something its own spec does not allow."""

    code = "BAD_REMOTE_RESPONSE"
    status = 502


class BadClientRequest(MacaronException):
    """This service tried to send a request that breaks the remote's spec: a bug on this side."""

    code = "BAD_CLIENT_REQUEST"
    status = 500


_remote_classes: dict[tuple[str, int], type[MacaronException]] = {}


def remote_error_class(code: str, status: int) -> type[MacaronException]:
    """The exception class for an Error a remote sent: the registered class of that code, else one made for it.

    A registered class is used only when it is built as MacaronException is (a
    description): BadResponse, ValidationError... need what only the remote had.
    """
    registered = error_class(code)
    if registered is not None and registered.status == status and registered.__init__ is MacaronException.__init__:
        return registered
    key = (code, status)
    cls = _remote_classes.get(key)
    if cls is None:
        cls = _remote_classes[key] = type(f"Remote_{code}", (RemoteError,), {"code": code, "status": status})
    return cls


@dataclass
class ClientSettings:
    """How to reach one API: from the ``clients:`` section of macaron.yaml."""

    url: str | None = None
    spec: str | None = None
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    retries: int = 2  # extra attempts after the first, for failures that are safe to retry
    backoff: float = 0.1  # seconds before the first retry; doubled each time, with jitter
    forward_auth: bool = False
    in_process: bool = False
    serve: bool = False  # also serve this API from this service
    pool_size: int = 10

    @classmethod
    def from_config(cls, name: str, values: Any) -> ClientSettings:
        values = dict(values or {})
        url_env = values.pop("url_env", None)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"clients.{name}: unknown setting(s) {', '.join(sorted(unknown))}")
        settings = cls(**values)
        if url_env:
            if url_env not in os.environ:
                raise ConfigError(f"clients.{name}: environment variable {url_env} (url_env) is not set")
            settings.url = os.environ[url_env]
        return settings


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110: what a header or cookie name may be


class ParameterWriter:
    """Writes one parameter outside the body as the server reads it, and makes sure the server would read it back unchanged.

    The server's own reader (macaron.parameters.ParameterReader) reads what was
    written: a value the layout cannot carry (a delimiter inside an item, ``/`` in a
    path segment, an empty exploded array that would not be sent at all) is refused
    with the reason, never sent altered.
    """

    def __init__(self, parameter: Parameter, factory: ModelFactory, operation: Operation) -> None:
        self.parameter = parameter
        self.location = parameter.location
        self.field = f"/{parameter.location}/{escape(parameter.name)}"
        self.reader = ParameterReader(parameter, factory, operation.path)
        self.layout = self.reader.layout
        self.writer = TextWriter(self.layout, parameter.allow_reserved)
        if self.location in ("header", "cookie") and not _TOKEN.fullmatch(parameter.name):
            raise ValueError(f"{quoted(parameter.name)} is not a valid {self.location} name")
        if self.location == "cookie" and self.layout.spread == PROPERTIES:
            schema = resolved(parameter.schema, factory.api.definitions)
            for prop in members(schema, factory.api.definitions)[0]:
                if not _TOKEN.fullmatch(prop):
                    raise ValueError(f"its property {quoted(prop)} would be a cookie's name, which it cannot be")

    def write(self, value: Any) -> list[tuple[str, str]]:
        """The (name, text) pairs of ``value``, encoded as sent; raises Unsendable."""
        pairs = self.writer.write(value)
        try:
            back = self._read_back(pairs)
        except MalformedParameter as exc:
            raise Unsendable(f"the server could not read what {self.layout.describe()} makes of it: {exc}") from None
        if back is MISSING:
            raise Unsendable(f"{_json(value)} writes nothing in {self.layout.describe()}, so the server would not see the parameter: pass None to leave it out")
        if back != value:
            raise Unsendable(f"{_json(value)} would reach the server as {_json(back)} in {self.layout.describe()}")
        return pairs

    def _read_back(self, pairs: list[tuple[str, str]]) -> Any:
        """What the server would read from the pairs: the way macaron.endpoint reads its location."""
        reader = self.reader
        location = self.location
        if not pairs:
            return MISSING
        if location == "path":
            text = pairs[0][1]
            return reader.parse_raw(text) if reader.split_raw else reader.parse(unquote(text))
        if location == "query":
            if reader.split_raw:
                return reader.read_raw(MultiDict([(unquote_plus(name), text) for name, text in pairs]))
            return reader.read(MultiDict([(unquote_plus(name), unquote_plus(text)) for name, text in pairs]))
        return reader.read(MultiDict(pairs))  # header, cookie (which the reader decodes), form field


def _json(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class OutgoingRequest:
    """What a call sends besides its JSON body: the path and query as they go on the wire, headers, form fields, files."""

    path: str
    query: str = ""  # percent-encoded, delimiters as the parameters' styles write them
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    raw: tuple[bytes, str] | None = None  # a body sent as text or bytes, and its Content-Type

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


class OperationClient:
    """Calls one operation: ``client(body, **parameters)``."""

    def __init__(self, api_client: ApiClient, operation: Operation, factory: ModelFactory) -> None:
        self.api_client = api_client
        self.operation = operation
        self.name = f"{operation.api}.{client_name(operation)}"
        self.method = operation.method.upper()
        self.idempotent = operation.method in IDEMPOTENT
        self.parameters = {p.python_name: p for p in operation.parameters if p.location != "body"}
        # One writer per parameter, prepared now: a parameter this client could not send stops start-up.
        self.writers: dict[str, ParameterWriter] = {}
        for python, parameter in self.parameters.items():
            try:
                self.writers[python] = ParameterWriter(parameter, factory, operation)
            except ValueError as exc:
                raise operation.error(f"the client of API '{operation.api}' cannot send {parameter.location} parameter '{parameter.name}': {exc}") from None
        headers = {p.name.lower() for p in self.parameters.values() if p.location == "header"}
        if "cookie" in headers and any(p.location == "cookie" for p in self.parameters.values()):
            raise operation.error(f"the client of API '{operation.api}' cannot send both a 'Cookie' header parameter and cookie parameters")
        self.body = next((p for p in operation.parameters if p.location == "body"), None)
        definitions = api_client.api.definitions
        # What this side sends is checked as a request (readOnly properties refused), what it gets as a response.
        accept_read_only = api_client.api.read_only_in_requests == "accept"
        self.request_checker = Checker(request_schema(operation, definitions, accept_read_only), definitions)
        self.responses: dict[int | str, tuple[Checker | None, Callable[[Any], Any]]] = {
            status: (
                Checker(response_variant(response.schema, definitions), definitions) if response.schema is not None else None,
                factory.converter(response.schema) if response.schema is not None else (lambda value: value),
            )
            for status, response in operation.responses.items()
        }
        # A body that may be text or bytes: each declared type, checked as the server checks it.
        self.raw_bodies = raw_body_checkers(self.body.raw_bodies, definitions) if self.body else []
        self.forward_auth = bool(operation.security) or "macaron.auth.add_auth" in _as_list(operation.extensions.get("x-decorate-request"))

    def __repr__(self) -> str:
        return f"<client {self.name}: {self.method} {self.operation.path}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        options = {key: kwargs.pop(key) for key in list(kwargs) if key.startswith("_")}
        unknown = set(options) - {"_timeout", "_connect_timeout", "_retries", "_headers", "_raise", "_forward_auth", "_content_type"}
        if unknown:
            raise TypeError(f"{self.name}() got unknown option(s) {', '.join(sorted(unknown))}")
        if len(args) > 1 or (args and self.body is None):
            raise TypeError(f"{self.name}() takes {'one positional argument (the body)' if self.body else 'no positional argument'}")
        missing = [name for name in kwargs if name not in self.parameters]
        if missing:
            raise TypeError(f"{self.name}() got unexpected argument(s) {', '.join(missing)}; it takes {', '.join(self.parameters) or 'none'}")
        body = args[0] if args else None
        raw = None
        if self.raw_bodies and body is not None and (isinstance(body, (str, bytes)) or not self.body.json_body):  # type: ignore[union-attr]
            raw = self._raw_body(body, options.get("_content_type"))
            body = None
        elif self.raw_bodies and body is None and self.body.required:  # type: ignore[union-attr]
            problem = {"field": "/body", "message": "a request body is required"}
            raise BadClientRequest(f"{self.name}: the request breaks the API's spec: /body: a request body is required", errors=[problem])
        values, files = self._values(body, kwargs)
        if not self.request_checker.is_valid(values):
            problems = self.request_checker.problems(values)
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise BadClientRequest(f"{self.name}: the request breaks the API's spec: {detail}", errors=problems)
        request = self._encode(values)
        request.files = files
        request.raw = raw
        # The caller's context first: a header the spec declares, passed explicitly, is the caller's choice.
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(self._context_headers(options.get("_forward_auth")))
        headers.update(request.headers)
        headers.update(options.get("_headers") or {})
        request.headers = dict(headers.items())
        return self.api_client.send(self, request, values.get("body"), options)

    def _raw_body(self, body: Any, content_type: str | None) -> tuple[bytes, str]:
        """A body sent as text or bytes: its bytes and Content-Type (``_content_type``, else the first type declared)."""
        declared = [raw.media_type for raw in self.body.raw_bodies]  # type: ignore[union-attr]  # as the spec orders them
        wanted = (content_type or declared[0]).split(";", 1)[0].strip().lower()
        if wanted == "*/*":
            wanted = "application/octet-stream"
        found = next(((raw, checker) for raw, checker in self.raw_bodies if media_matches(raw.media_type, wanted)), None)
        if found is None or wanted.endswith("/*"):
            raise TypeError(f"{self.name}() sends a body of type {' or '.join(declared)}: pass the exact type as _content_type= (not {wanted})")
        raw, checker = found
        if not isinstance(body, (str, bytes)) or (raw.text and not isinstance(body, str)):
            raise TypeError(f"{self.name}() sends a {wanted} body as {'a str' if raw.text else 'bytes'}, not {type(body).__name__}")
        data = body.encode() if isinstance(body, str) else body
        problems = raw_value(raw, checker, data, "utf-8")[1]
        if problems:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise BadClientRequest(f"{self.name}: the request breaks the API's spec: {detail}", errors=problems)
        return data, f"{wanted}; charset=utf-8" if raw.text else wanted

    def _values(self, body: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request as JSON data, by location, as the server will see it; and the files to upload."""
        values: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            group = values.setdefault(parameter.location, {})  # present even when empty, as the server sees it
            if name not in kwargs or kwargs[name] is None:
                continue
            if parameter.is_file:
                files[parameter.name] = kwargs[name]
                group[parameter.name] = True
                continue
            group[parameter.name] = to_wire(kwargs[name])
        if self.body is not None and body is not None:
            values["body"] = to_wire(body)
        return values, files

    def _encode(self, values: dict[str, Any]) -> OutgoingRequest:
        """The parameters written as the server reads them; a value it would not read back unchanged is refused."""
        request = OutgoingRequest(self.operation.path)
        problems: list[dict[str, str]] = []
        query: list[str] = []
        cookies: list[str] = []
        for writer in self.writers.values():
            parameter = writer.parameter
            if parameter.is_file or parameter.name not in values.get(parameter.location, {}):
                continue
            try:
                pairs = writer.write(values[parameter.location][parameter.name])
            except Unsendable as exc:
                problems.append({"field": writer.field, "message": str(exc)})
                continue
            location = parameter.location
            if location == "path":
                request.path = request.path.replace("{" + parameter.name + "}", pairs[0][1])
            elif location == "query":
                query.extend(f"{name}={text}" for name, text in pairs)
            elif location == "header":
                request.headers[pairs[0][0]] = pairs[0][1]
            elif location == "cookie":
                cookies.extend(f"{name}={text}" for name, text in pairs)
            elif location == "formData":
                for name, text in pairs:
                    request.form.setdefault(name, []).append(text)
        if problems:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise BadClientRequest(f"{self.name}: the request cannot be sent as the API's spec says: {detail}", errors=problems)
        request.query = "&".join(query)
        if cookies:
            request.headers["Cookie"] = "; ".join(cookies)
        return request

    def _context_headers(self, forward_auth: bool | None) -> dict[str, str]:
        current = context.current()
        headers = {REQUEST_ID_HEADER: current.request_id or uuid.uuid4().hex}
        chain = [*current.call_chain, self.api_client.caller]
        headers[CALL_CHAIN_HEADER] = ",".join(name for name in chain if name)
        wanted = self.forward_auth or self.api_client.settings.forward_auth if forward_auth is None else forward_auth
        if wanted and current.token:
            headers["Authorization"] = f"Bearer {current.token}"
        return headers

    def result(self, status: int, content: bytes, url: str, raise_errors: bool) -> Any:
        try:
            data = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            raise BadRemoteResponse(f"{self.name}: {url} answered {status} with a body that is not JSON") from None
        key = response_key(self.responses, status)
        entry = None if key is None else self.responses[key]
        if 200 <= status < 300:
            if entry is None:
                raise BadRemoteResponse(f"{self.name}: {url} answered status {status}, which the spec does not declare")
            checker, convert = entry
            if checker is not None and not checker.is_valid(data):
                detail = "; ".join(f"{p['field'] or '/'}: {p['message']}" for p in checker.problems(data))
                raise BadRemoteResponse(f"{self.name}: {url} answered a {status} body that breaks the spec: {detail}")
            return None if data is None else convert(data)
        if not raise_errors:
            return data if entry is None or data is None else entry[1](data)
        if isinstance(data, dict) and "error" in data:
            cls = remote_error_class(str(data["error"]), status)
            # What the remote added beyond the standard fields ("errors": each field it refused...) stays with the
            # error, so the caller can read it, and a caller that lets it through passes it on unchanged.
            error = cls(str(data.get("error_description", "")), user_message=data.get("user_message"))
            error.extra = {key: value for key, value in data.items() if key not in _ERROR_FIELDS}
            if data.get("error_id"):
                error.error_id = str(data["error_id"])  # the same error keeps one id across services
            raise error
        cls = remote_error_class("REMOTE_ERROR", status)
        raise cls(f"{self.name}: {url} answered {status}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def client_name(operation: Operation) -> str:
    """The method name of an operation on its client: x-bind-client, else the operationId's last part."""
    name = operation.extensions.get("x-bind-client") or (operation.operation_id or "").rsplit(".", 1)[-1]
    if not name:
        name = f"{operation.method}_{operation.path}"
    return python_name(str(name))


class ApiClient:
    """The client of one API: its operations as methods."""

    def __init__(self, api: Api, factory: ModelFactory, settings: ClientSettings, caller: str, app: Flask | None = None) -> None:
        self.api = api
        self.settings = settings
        self.caller = caller
        self.app = app if settings.in_process else None
        if self.app is None and not settings.url:
            raise ConfigError(f"clients.{api.name}: no url (set 'url' or 'url_env', or 'in_process: true' for an API this service serves)")
        self.base_url = (settings.url or "").rstrip("/")
        self.session = requests.Session()
        # A client serves every caller of this service: a cookie one remote answer sets must not go out with the next call.
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.operations: dict[str, OperationClient] = {}
        for operation in api.operations:
            name = client_name(operation)
            if name in self.operations:
                raise operation.error(f"two operations of API '{api.name}' would be client.{name}: name one with x-bind-client")
            self.operations[name] = OperationClient(self, operation, factory)

    def __getattr__(self, name: str) -> OperationClient:
        try:
            return self.operations[name]
        except KeyError:
            raise AttributeError(f"API '{self.api.name}' has no operation '{name}' (it has: {', '.join(sorted(self.operations))})") from None

    def __dir__(self) -> list[str]:
        return sorted(self.operations)

    def send(self, call: OperationClient, request: OutgoingRequest, body: Any, options: dict[str, Any]) -> Any:
        raise_errors = bool(options.get("_raise", True))
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            request.headers["Content-Type"] = "application/json"
        elif request.raw is not None:
            data, request.headers["Content-Type"] = request.raw
        if self.app is not None:
            return self._send_in_process(call, request, data, raise_errors)
        url = self.base_url + request.path  # for messages: the query may carry what logs should not
        timeout = (float(options.get("_connect_timeout", self.settings.connect_timeout)), float(options.get("_timeout", self.settings.read_timeout)))
        retries = int(options.get("_retries", self.settings.retries))
        payload: Any = data if data is not None else (request.form or None)
        attempt = 0
        while True:
            try:
                # The query goes in the URL as written: params= would encode it again, delimiters included.
                response = self.session.request(
                    call.method, self.base_url + request.target, headers=request.headers, data=payload, files=request.files or None, timeout=timeout
                )
            except (requests.ConnectTimeout, requests.ConnectionError) as exc:
                # Refused or timed out while connecting: nothing was sent, so any method may retry.
                never_sent = isinstance(exc, requests.ConnectTimeout) or _never_sent(exc)
                if attempt < retries and (never_sent or call.idempotent):
                    attempt = self._wait(attempt)
                    continue
                raise RemoteUnavailable(f"{call.name}: cannot reach {url} ({_reason(exc)}) after {attempt + 1} attempt(s)") from None
            except requests.ReadTimeout:
                if attempt < retries and call.idempotent:
                    attempt = self._wait(attempt)
                    continue
                raise RemoteTimeout(f"{call.name}: {url} did not answer within {timeout[1]} s (attempt {attempt + 1})") from None
            if response.status_code in RETRY_STATUSES and call.idempotent and attempt < retries:
                attempt = self._wait(attempt)
                continue
            return call.result(response.status_code, response.content, url, raise_errors)

    def _wait(self, attempt: int) -> int:
        time.sleep(self.settings.backoff * (2**attempt) * random.uniform(0.5, 1.5))
        return attempt + 1

    def _send_in_process(self, call: OperationClient, request: OutgoingRequest, data: bytes | None, raise_errors: bool) -> Any:
        assert self.app is not None
        # No cookie jar: a Cookie header is the call's own, and nothing a response sets carries over to other calls.
        client = self.app.test_client(use_cookies=False)
        payload: Any = data
        if request.form or request.files:
            payload = {**request.form, **request.files}
        response = client.open(request.path, method=call.method, query_string=request.query, headers=request.headers, data=payload)
        return call.result(response.status_code, response.get_data(), f"in-process {call.method} {request.path}", raise_errors)


def _never_sent(exc: Exception) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    name = type(reason).__name__ if reason is not None else ""
    return name in ("NewConnectionError", "ConnectTimeoutError") or "NewConnectionError" in str(exc)


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text[:200]


def client_settings(config: Config) -> dict[str, ClientSettings]:
    section = config.get("clients") or {}
    if not isinstance(section, dict):
        raise ConfigError("'clients' in the configuration must map API names to settings")
    return {name: ClientSettings.from_config(name, values) for name, values in section.items()}


def find_spec(root: Path, name: str, settings: ClientSettings) -> Path:
    if settings.spec:
        path = (root / settings.spec).resolve()
        if not path.exists():
            raise ConfigError(f"clients.{name}.spec: no such file {path}")
        return path
    for suffix in (".yaml", ".yml", ".json"):
        path = root / "apis" / f"{name}{suffix}"
        if path.exists():
            return path
    raise ConfigError(f"clients.{name}: no spec found (put it at apis/{name}.yaml or set 'spec')")


def build_clients(
    config: Config, pm: MacaronPluginManager, served: dict[str, tuple[Api, ModelFactory]] | None = None, app: Flask | None = None
) -> dict[str, ApiClient]:
    """A client for every API in ``clients:``; attached to ``apis.<api>.client``."""
    root = config.root or Path(".")
    served = served or {}
    clients: dict[str, ApiClient] = {}
    for name, settings in client_settings(config).items():
        if name in served:
            api, factory = served[name]
        else:
            file = find_spec(root, name, settings)
            loaded = pm.hook.load_spec(path=file, config=config)
            if loaded is None:
                raise SpecError(file, "/", "no plugin can load this spec")
            api = loaded
            prepare_api(api, config)  # as when served
            factory = ModelFactory(api)
            apis._add(factory.build())
        if settings.in_process and name not in served:
            raise ConfigError(f"clients.{name}: in_process needs the API to be served by this service (set 'serve: true')")
        client = ApiClient(api, factory, settings, str(config.get("name", "")), app)
        models: ApiModels = factory.models
        models.client = client
        clients[name] = client
    return clients


def client_only_apis(config: Config) -> set[str]:
    """APIs whose specs sit in apis/ but that this service calls rather than serves."""
    return {name for name, settings in client_settings(config).items() if not settings.serve}


def load_clients(path: str | os.PathLike[str] = ".", env: str | None = None) -> dict[str, ApiClient]:
    """The clients of the service in ``path``, for a script: no Flask app, no request needed."""
    from macaron.config import load_config, set_config
    from macaron.plugins import pm

    config = load_config(path, env)
    set_config(config)
    return build_clients(config, pm())
