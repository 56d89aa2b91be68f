"""Errors a handler raises, and the one JSON Error body every non-2xx response carries.

The body is ``{status, error, error_description, error_id, user_message?}``:
``error`` is a stable code (``TOKEN_EXPIRED``), ``error_description`` says what
went wrong for a developer, ``user_message`` what to show an end user, and
``error_id`` ties the response to the server's logs and crash reports.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

_codes: dict[str, type[MacaronException]] = {}


class MacaronException(Exception):
    """Base of every error macaron turns into an Error response.

    Subclass it with ``code`` and ``status``, or use :func:`add_error`. The first
    argument is the description sent in ``error_description``; pass
    ``user_message=`` for text meant for end users.
    """

    code: ClassVar[str] = "UNKNOWN_EXCEPTION"
    status: ClassVar[int] = 500

    def __init__(self, description: str = "", *, user_message: str | None = None, **extra: Any) -> None:
        super().__init__(description)
        self.description = description
        self.user_message = user_message
        self.extra = extra
        self.error_id = uuid.uuid4().hex

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _codes.setdefault(cls.code, cls)

    def to_error(self) -> dict[str, Any]:
        """The Error body for this exception."""
        body: dict[str, Any] = {
            "status": self.status,
            "error": self.code,
            "error_description": self.description or self.code.replace("_", " ").capitalize(),
            "error_id": self.error_id,
        }
        if self.user_message is not None:
            body["user_message"] = self.user_message
        body.update(self.extra)
        return body


def add_error(name: str, code: str, status: int) -> type[MacaronException]:
    """Create and register a MacaronException subclass named ``name``.

    A code maps to one class: registering the same code again with another status
    is an error, so two parts of a service cannot silently disagree.
    """
    existing = _codes.get(code)
    if existing is not None:
        if existing.status != status:
            raise ValueError(f"error code {code} is already registered with status {existing.status}")
        return existing
    cls = type(name, (MacaronException,), {"code": code, "status": status})
    return cls


def error_class(code: str) -> type[MacaronException] | None:
    """The registered class of an error code, if any."""
    return _codes.get(code)


class ValidationError(MacaronException):
    """The request breaks the spec; ``errors`` lists every problem as ``{field, message}``."""

    code = "INVALID_PARAMETER"
    status = 400

    def __init__(self, problems: list[dict[str, str]]) -> None:
        count = len(problems)
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the request: {summary}", errors=problems)
        self.problems = problems


class ModelValidationError(MacaronException):
    """Data does not fit a model's schema (raised by ``Model.from_json`` and ``validate``)."""

    code = "INVALID_MODEL"
    status = 400

    def __init__(self, model: str, problems: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{p['field'] or '/'}: {p['message']}" for p in problems)
        super().__init__(f"invalid {model}: {summary}", errors=problems)
        self.problems = problems


class MalformedJSON(MacaronException):
    code = "MALFORMED_JSON"
    status = 400


class BadResponse(MacaronException):
    """The handler returned something its spec does not allow: a bug on the server side.

    The caller is told only that the response broke the spec; ``detail`` (what was
    wrong) goes to the logs and crash reports.
    """

    code = "BAD_RESPONSE"
    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__("The server built a response that does not match its API spec")
        self.detail = detail


class ServerError(MacaronException):
    """An uncaught exception; its message stays in the logs, never in the response."""

    code = "SERVER_ERROR"
    status = 500


class NotFound(MacaronException):
    code = "NOT_FOUND"
    status = 404


class MethodNotAllowed(MacaronException):
    code = "METHOD_NOT_ALLOWED"
    status = 405


class RequestTooLarge(MacaronException):
    code = "REQUEST_TOO_LARGE"
    status = 413


class UnsupportedMediaType(MacaronException):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class HTTPError(MacaronException):
    """Any other HTTP error werkzeug or Flask raised (``abort(401)``, a malformed multipart body...).

    Keeps the status and turns werkzeug's name into the code: 401 is ``UNAUTHORIZED``.
    """

    def __init__(self, status: int, name: str, description: str = "") -> None:
        super().__init__(description)
        self.http_status = status
        self.http_code = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "HTTP_ERROR"

    def to_error(self) -> dict[str, Any]:
        body = super().to_error()
        body["status"] = self.http_status
        body["error"] = self.http_code
        if not self.description:
            body["error_description"] = self.http_code.replace("_", " ").capitalize()
        return body


# Werkzeug's HTTP errors that reach macaron, by status, as macaron error classes.
HTTP_ERRORS: dict[int, type[MacaronException]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: RequestTooLarge,
    415: UnsupportedMediaType,
}
