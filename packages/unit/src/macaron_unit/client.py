"""An HTTP client for black-box tests: every call returns a :class:`Reply` whose assertions name the request.

PyMacaron's ``assertCallReturnJson(method, path, data, auth, status)`` family became
methods on the reply, so one call reads as one sentence::

    client.get("/v1/hello/bob").assert_dict({"greetings": ["Hello, bob!"]})
    client.post("/v1/questions", json={"text": "Why?!"}).assert_error(422, "RHETORICAL_QUESTION")
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import NewConnectionError

# The fields assert_error checks. A body has the others (error_description, error_id...) only where the
# service's own Error declares them (docs/operations.md, "Error bodies"), so they cannot be required.
ERROR_KEYS = ("status", "error")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
BODY_EXCERPT = 2000


class ServerUnreachable(requests.ConnectionError):
    """No server accepted the connection, even after retrying for the client's ``boot_timeout``."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached a server (refused or timed-out connection), so resending is safe."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class Reply:
    """A response, with assertions that fail with the method, URL, status and body in the message."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def url(self) -> str:
        return self.response.url

    def json(self) -> Any:
        return self.response.json()

    def __repr__(self) -> str:
        return f"<Reply {self.response.request.method} {self.url} {self.status_code}>"

    def describe(self) -> str:
        """The request and the response, as shown in assertion failures."""
        response = self.response
        body = response.text
        if len(body) > BODY_EXCERPT:
            body = body[:BODY_EXCERPT] + f"... ({len(response.content)} bytes)"
        lines = [
            f"request:  {response.request.method} {response.url}",
            f"response: {response.status_code} {response.reason or ''}".rstrip(),
            f"content-type: {response.headers.get('Content-Type', '-')}",
        ]
        if "X-Request-ID" in response.headers:
            lines.append(f"request id: {response.headers['X-Request-ID']}")
        lines.append(f"body: {body or '(empty)'}")
        return "\n".join(lines)

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.describe()}")

    def assert_status(self, status: int | Iterable[int]) -> Reply:
        __tracebackhide__ = True  # pytest shows the test's line, not this library's
        expected = (status,) if isinstance(status, int) else tuple(status)
        if self.status_code not in expected:
            wanted = expected[0] if len(expected) == 1 else f"one of {', '.join(map(str, expected))}"
            raise self.fail(f"expected status {wanted}, got {self.status_code}")
        return self

    def assert_json(self, status: int = 200) -> Any:
        """The status is ``status`` and the body is JSON; return the decoded body."""
        __tracebackhide__ = True
        self.assert_status(status)
        content_type = self.headers.get("Content-Type", "")
        if "json" not in content_type:
            raise self.fail(f"expected a JSON body, got content-type {content_type or 'none'}")
        try:
            return jsonlib.loads(self.content)
        except ValueError as exc:
            raise self.fail(f"the body is not valid JSON: {exc}") from None

    def assert_ok(self, status: int = 200) -> None:
        """The body is the empty JSON object ``{}`` (macaron's ``Ok``)."""
        __tracebackhide__ = True
        body = self.assert_json(status)
        if body != {}:
            raise self.fail("expected the body {}")

    def assert_dict(self, values: Mapping[str, Any] | None = None, *, keys: Iterable[str] = (), status: int = 200) -> dict[str, Any]:
        """The body is a JSON object holding ``keys`` and every key/value of ``values``; return it."""
        __tracebackhide__ = True
        body = self.assert_json(status)
        if not isinstance(body, dict):
            raise self.fail(f"expected a JSON object, got {type(body).__name__}")
        problems = [f"missing key {key!r}" for key in keys if key not in body]
        for key, value in (values or {}).items():
            if key not in body:
                problems.append(f"missing key {key!r} (expected {value!r})")
            elif body[key] != value:
                problems.append(f"{key!r} is {body[key]!r}, expected {value!r}")
        if problems:
            raise self.fail("; ".join(problems))
        return body

    def assert_error(self, status: int, code: str | None = None) -> dict[str, Any]:
        """The response is a macaron Error with this status and, if given, this ``error`` code; return the Error."""
        __tracebackhide__ = True
        body = self.assert_json(status)
        if not isinstance(body, dict):
            raise self.fail("expected an Error object")
        missing = [key for key in ERROR_KEYS if key not in body]
        if missing:
            raise self.fail(f"expected an Error, but the body lacks {', '.join(missing)}")
        if body["status"] != status:
            raise self.fail(f"the Error says status {body['status']}, the response {status}")
        if code is not None and body["error"] != code:
            raise self.fail(f"expected error {code}, got {body['error']}")
        return body

    def assert_redirect(self, location: str | None = None, status: int | Iterable[int] = REDIRECT_STATUSES) -> str:
        """The response redirects (to ``location``, relative or absolute, if given); return the absolute target."""
        __tracebackhide__ = True
        self.assert_status(status)
        header = self.headers.get("Location")
        if not header:
            raise self.fail("expected a Location header")
        target = urljoin(self.url, header)
        if location is not None and target != urljoin(self.url, location):
            raise self.fail(f"expected a redirect to {location}, got {header}")
        return target

    def assert_text(self, status: int = 200, contains: str | None = None, content_type: str = "text/") -> str:
        """A non-JSON body (HTML, plain text...) of this content type, holding ``contains``; return it."""
        __tracebackhide__ = True
        self.assert_status(status)
        actual = self.headers.get("Content-Type", "")
        if not actual.startswith(content_type):
            raise self.fail(f"expected content-type {content_type}..., got {actual or 'none'}")
        if contains is not None and contains not in self.text:
            raise self.fail(f"expected the body to contain {contains!r}")
        return self.text


class Client:
    """Calls one HTTP service, by path: ``Client("http://127.0.0.1:8080").get("/ping").assert_ok()``.

    ``token`` is sent as ``Authorization: Bearer <token>`` on every call unless a call
    says otherwise. A refused connection is retried for ``boot_timeout`` seconds, so
    tests can start while the server boots; nothing else is retried. ``timeout``
    bounds each call. Redirects are not followed, so they can be asserted.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        boot_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.boot_timeout = boot_timeout
        self.headers = dict(headers or {})
        self.verify = verify
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"<Client {self.base_url}{' with token' if self.token else ''}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + ("" if path.startswith("/") else "/") + path

    def with_token(self, token: str | None) -> Client:
        """A client to the same server that sends this token (None: no token)."""
        return Client(self.base_url, token, timeout=self.timeout, boot_timeout=self.boot_timeout, headers=self.headers, verify=self.verify)

    def authenticated(
        self,
        user_id: str = "test-user",
        *,
        expire_in: int | None = None,
        data: Mapping[str, Any] | None = None,
        scopes: Iterable[str] | None = None,
        service: str | None = None,
        env: str | None = None,
    ) -> Client:
        """A client sending a token issued from the service's config (see :func:`macaron_unit.generate_test_token`)."""
        from macaron_unit.auth import generate_test_token

        return self.with_token(generate_test_token(user_id, expire_in=expire_in, data=data, scopes=scopes, service=service, env=env))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = UNSET,
        data: Any = None,
        files: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = UNSET,
        allow_redirects: bool = False,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request. ``token`` overrides the client's token for this call (None: send none)."""
        all_headers = dict(self.headers)
        bearer = self.token if token is UNSET else token
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        all_headers.update(headers or {})
        url = self.url(path)
        deadline = time.monotonic() + self.boot_timeout
        while True:
            try:
                response = self.session.request(
                    method.upper(),
                    url,
                    json=None if json is UNSET else json,
                    data=data if json is UNSET else None,
                    files=files,
                    params=params,
                    headers=all_headers,
                    allow_redirects=allow_redirects,
                    timeout=timeout or self.timeout,
                    verify=self.verify,
                )
                return Reply(response)
            except requests.ConnectionError as exc:
                if not _never_sent(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise ServerUnreachable(f"{method.upper()} {url}: no server accepted the connection within {self.boot_timeout:g} s ({exc})") from exc
                time.sleep(0.1)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Reply:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Reply:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def wait_until_up(self, path: str = "/ping", timeout: float | None = None) -> None:
        """Block until ``path`` answers (any status), or raise :class:`ServerUnreachable`."""
        previous = self.boot_timeout
        self.boot_timeout = previous if timeout is None else timeout
        try:
            self.get(path, token=None)
        finally:
            self.boot_timeout = previous

    def assert_is_up(self) -> None:
        """``GET /ping`` answers ``{}``."""
        __tracebackhide__ = True
        self.get("/ping").assert_ok()

    def assert_version(self, name: str | None = None) -> dict[str, Any]:
        """``GET /version`` answers the service's name, version, env and APIs; return them."""
        __tracebackhide__ = True
        return self.get("/version").assert_dict({"name": name} if name is not None else None, keys=("name", "version", "apis", "env"))

    def assert_requires_auth(self, method: str, path: str, **kwargs: Any) -> None:
        """The endpoint refuses, with a 401 Error, a call without token, with a malformed header and with a forged token.

        PyMacaron's ``assertHasAuthVersion`` did the same for ``/auth/version``.
        """
        __tracebackhide__ = True
        kwargs.pop("token", None)
        extra = dict(kwargs.pop("headers", None) or {})
        self.request(method, path, token=None, headers=extra, **kwargs).assert_error(401, "AUTHORIZATION_HEADER_MISSING")
        self.request(method, path, token=None, headers={**extra, "Authorization": "Basic dXNlcjpwYXNz"}, **kwargs).assert_error(401)
        forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.c2lnbmVkIHdpdGggdGhlIHdyb25nIGtleQ"
        self.request(method, path, token=forged, headers=extra, **kwargs).assert_error(401, "TOKEN_INVALID")
