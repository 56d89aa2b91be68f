"""PyMacaron's test assertions as macaron-unit client calls, for ``macaron migrate``.

The test classes stay classes: their base becomes ``macaron_unit.MacaronTestCase`` (a
``unittest.TestCase`` whose ``client``, ``base_url``, ``host``, ``port`` and ``token`` come
from the pytest plugin), and each ``self.assert...Return...`` call becomes the same request
on ``self.client`` with the matching ``Reply`` assertion. The signatures below are
pymacaron-unit's (1.0.x ``testcase.py``) and PyMacaron 2.x's ``pymacaron/test.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Base classes recognised as PyMacaron's test case (after `from pymacaron.test import ...`,
# `from pymacaron_unit.testcase import ...` or `from pymacaron_unit import testcase`).
TESTCASE_BASES = {"PyMacaronTestCase", "testcase.PyMacaronTestCase", "pymacaron_unit.testcase.PyMacaronTestCase"}
# Attributes PyMacaron's setUp assigned to target the server; MacaronTestCase provides them.
TARGET_ATTRIBUTES = {"host", "port", "base_url", "token"}


@dataclass(frozen=True)
class Assertion:
    method: str | None  # HTTP method, or None when it is the first parameter
    params: tuple[str, ...]  # PyMacaron's parameters after `self`, in order
    check: str  # json, dict, ok, error, html, text, redirect


ASSERTIONS: dict[str, Assertion] = {
    "assertGetReturnJson": Assertion("get", ("path", "status", "auth", "verify_ssl"), "json"),
    "assertDeleteReturnJson": Assertion("delete", ("path", "status", "auth"), "json"),
    "assertPostReturnJson": Assertion("post", ("path", "data", "status", "auth", "verify_ssl"), "json"),
    "assertGetReturnDict": Assertion("get", ("path", "kv", "status", "auth", "verify_ssl"), "dict"),
    "assertPostReturnDict": Assertion("post", ("path", "data", "kv", "status", "auth", "verify_ssl"), "dict"),
    "assertGetReturnOk": Assertion("get", ("path", "auth"), "ok"),
    "assertPostReturnOk": Assertion("post", ("path", "data", "auth"), "ok"),
    "assertGetReturnError": Assertion("get", ("path", "status", "error", "auth", "verify_ssl"), "error"),
    "assertPostReturnError": Assertion("post", ("path", "data", "status", "error", "auth", "verify_ssl"), "error"),
    "assertCallReturnJson": Assertion(None, ("method", "path", "data", "auth", "status", "allow_error", "verify_ssl"), "json"),
    "assertCallReturnDict": Assertion(None, ("method", "path", "kv", "data", "auth", "status", "verify_ssl"), "dict"),
    "assertCallReturnOk": Assertion(None, ("method", "path", "data", "auth"), "ok"),
    "assertCallReturnError": Assertion(None, ("method", "path", "status", "error", "data", "auth"), "error"),
    "assertCallReturnHtml": Assertion(None, ("method", "path", "data", "auth", "status", "allow_redirects", "verify_ssl", "quiet"), "html"),
    "assertCallReturnText": Assertion(None, ("method", "path", "data", "auth", "status", "allow_redirects", "verify_ssl", "quiet"), "text"),
    "assertCallReturnRedirect": Assertion(
        None, ("method", "path", "data", "auth", "status", "allow_redirects", "verify_ssl", "quiet"), "redirect"
    ),
}
# PyMacaron 2.x's health checks, without arguments but verify_ssl.
HEALTH_CHECKS = {"assertHasPing": "self.client.assert_is_up()", "assertHasVersion": "self.client.assert_version()"}
AUTH_VERSION = (
    'self.client.assert_requires_auth("GET", "/auth/version")',
    'self.client.get("/auth/version", token=self.token).assert_json()',
)
# Defaults that change nothing when written out: dropped from the converted call.
NEUTRAL = {"verify_ssl": "True", "allow_error": "False"}


class NotMechanical(Exception):
    """The call has no one-to-one macaron-unit equivalent; the message says why."""


def _code(node: Any) -> str:
    import libcst as cst

    return cst.Module([]).code_for_node(node)


def _bind(name: str, spec: Assertion, call: Any) -> dict[str, str]:
    """PyMacaron's arguments by parameter name, as source code."""
    bound: dict[str, str] = {}
    for index, arg in enumerate(call.args):
        if arg.star:
            raise NotMechanical(f"'{name}' called with *args/**kwargs")
        key = arg.keyword.value if arg.keyword is not None else (spec.params[index] if index < len(spec.params) else None)
        if key is None or key not in spec.params:
            raise NotMechanical(f"'{name}' called with an argument it does not take ({_code(arg).strip(', ')})")
        bound[key] = _code(arg.value).strip()
    return bound


def _is_string_literal(source: str) -> bool:
    import libcst as cst

    try:
        return isinstance(cst.parse_expression(source), (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString))
    except cst.ParserSyntaxError:
        return False


def convert(name: str, call: Any) -> str | None:
    """The macaron-unit source for ``self.<name>(...)``, None when ``name`` is not PyMacaron's; NotMechanical if unconvertible."""
    if name in HEALTH_CHECKS or name == "assertHasAuthVersion":
        for arg in call.args:
            if arg.keyword is None or arg.keyword.value != "verify_ssl" or _code(arg.value).strip() != "True":
                raise NotMechanical(f"'{name}({_code(arg).strip(', ')})': TLS verification is set per Client (Client(url, verify=False))")
        return HEALTH_CHECKS.get(name, AUTH_VERSION[0])
    if name == "assertIsVersion":
        raise NotMechanical("'assertIsVersion': macaron's /version answers name, version, apis and env (assert_version checks them)")
    spec = ASSERTIONS.get(name)
    if spec is None:
        return None
    args = _bind(name, spec, call)
    required = (
        {"method", "path", "kv", "error"}
        | ({"data"} if spec.method == "post" else set())
        | ({"status"} if spec.check == "error" else set())
    )
    missing = [param for param in spec.params if param in required and param not in args]
    if missing:
        raise NotMechanical(f"'{name}' called without {', '.join(missing)}")
    for option in ("verify_ssl", "allow_error"):
        if option in args and args[option] != NEUTRAL[option]:
            raise NotMechanical(
                f"'{name}' with {option}={args[option]}: "
                + (
                    "TLS verification is set per Client (Client(url, verify=False))"
                    if option == "verify_ssl"
                    else "assert the status yourself"
                )
            )
    request = [args["method"]] if spec.method is None else []
    request.append(args["path"])
    data = args.get("data")
    if data is not None and data != "None":
        request.append(f"data={data}" if _is_string_literal(data) else f"json={data}")
    auth = args.get("auth")
    if auth is not None and auth != "None":
        # PyMacaron's auth is the whole header value ("Bearer <jwt>").
        request.append(f'headers={{"Authorization": {auth}}}')
    follow = args.get("allow_redirects")
    if spec.check in ("html", "text") and follow != "False":
        request.append("allow_redirects=True")  # PyMacaron followed redirects; macaron-unit's client does not
    if spec.check == "redirect" and follow not in (None, "False"):
        raise NotMechanical(f"'{name}' with allow_redirects={follow}: a followed redirect is no redirect to assert")
    call_code = f"self.client.{spec.method}({', '.join(request)})" if spec.method else f"self.client.request({', '.join(request)})"
    status = args.get("status")
    checks: dict[str, Callable[[], str]] = {
        "json": lambda: f"assert_json({status})" if status not in (None, "200") else "assert_json()",
        "dict": lambda: f"assert_dict({args['kv']}" + (f", status={status})" if status not in (None, "200") else ")"),
        "ok": lambda: "assert_ok()",
        "error": lambda: f"assert_error({args['status']}, {args['error']})",
        "html": lambda: f'assert_text({status or "200"}, content_type="text/html")',
        "text": lambda: f'assert_text({status or "200"}, content_type="text/plain")',
        "redirect": lambda: f"assert_redirect(status={status or '302'})",
    }
    return f"{call_code}.{checks[spec.check]()}"
