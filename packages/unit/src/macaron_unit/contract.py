"""Contract tests: requests generated from the specs a service serves (schemathesis), every response checked against them.

For each operation of each served API (the service's ``apis/`` and what plugins add,
such as ``/ping``), two rounds of at most ``max_examples`` requests:

* valid requests (positive): no 5xx, only documented statuses, bodies and content
  types as the spec says;
* invalid requests (negative): no 5xx, and an answer of a documented status has
  the documented body (macaron's Error must match the spec's Error, for instance).

The whole run stops at ``time_limit``; each request at ``request_timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from macaron.spec import Api

PASSED, FAILED, SKIPPED = "PASS", "FAIL", "SKIP"


@dataclass
class OperationResult:
    api: str
    method: str
    path: str
    operation_id: str | None
    status: str = PASSED
    requests: int = 0
    report: str = ""  # what failed and how to reproduce it, or why it was skipped

    @property
    def label(self) -> str:
        name = f"{self.method.upper()} {self.path}"
        return f"{name} ({self.operation_id})" if self.operation_id else name


@dataclass
class ContractReport:
    service: str
    url: str
    results: list[OperationResult] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def failed(self) -> list[OperationResult]:
        return [result for result in self.results if result.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = {status: sum(1 for r in self.results if r.status == status) for status in (PASSED, FAILED, SKIPPED)}
        requests = sum(r.requests for r in self.results)
        line = (
            f"contract {self.service}: {counts[PASSED]} passed, {counts[FAILED]} failed, {counts[SKIPPED]} skipped "
            f"({requests} requests in {self.seconds:.1f} s)"
        )
        return line + (" -- time limit reached, some operations were not tested" if self.timed_out else "")


class ContractError(RuntimeError):
    """The contract run could not start (no service, no spec, schemathesis cannot read a spec)."""


class _OutOfTime(Exception):
    pass


class _ContractBroken(AssertionError):
    """schemathesis' FailureGroup is a BaseException, which hypothesis lets through unshrunk: this carries it instead."""


# What the server's JSON library carries: beyond, it answers 400, which a contract must not count as a break.
INT_LOW, INT_HIGH = -(2**63), 2**64 - 1


def enforced_document(api: Api, path: Path, env: str | None = None) -> dict[str, Any]:
    """The API's spec in one document, as the server enforces it, for schemathesis to generate requests from.

    Its objects are closed as the server closes them (:func:`macaron.documents.close_document`),
    unless the service accepts unknown fields: read as written, ``{"": null, "name": "0"}``
    would be a valid request and the server's 400 a broken contract. Integers without
    bounds of their own get the 64-bit range the server carries.
    """
    from macaron.config import load_config
    from macaron.documents import bundle, close_document, document_schemas

    document = bundle(api.document, Path(api.file))
    if load_config(path, env).get("reject_unknown_fields", True) is False:
        return document
    document = close_document(document)
    for schema in document_schemas(document):
        types = schema.get("type")
        if types == "integer" or (isinstance(types, list) and "integer" in types):
            schema.setdefault("minimum", INT_LOW)
            schema.setdefault("maximum", INT_HIGH)
    return document


def security_scopes(path: Path, env: str | None = None) -> list[str]:
    """Every scope that an operation served by ``path`` requires, so that a contract token can reach every handler."""
    scopes = {scope for api in served_apis(path, env) for op in api.operations for alternative in op.security for names in alternative.values() for scope in names}
    return sorted(scopes)


def served_apis(path: Path, env: str | None = None) -> list[Api]:
    """Every API the service in ``path`` serves, loaded as the server loads them (:func:`macaron.load_service`).

    Client-only APIs (those the service only calls) are not among them, nor a file of
    definitions the specs ``$ref``; the APIs plugins add (``/ping``...) are.
    """
    from macaron.app import load_service
    from macaron.startup import StartupError

    try:
        service = load_service(path, env)
    except StartupError as exc:
        raise ContractError(str(exc)) from exc
    return list(service.apis.values())


def run_contract(
    path: Path,
    url: str,
    *,
    env: str | None = None,
    max_examples: int = 25,
    time_limit: float = 60.0,
    request_timeout: float = 10.0,
    seed: int | None = None,
    token: str | None = None,
    negative: bool = True,
    progress: Callable[[OperationResult], None] | None = None,
) -> ContractReport:
    """Test every operation served by the service in ``path`` against the server at ``url``."""
    import hypothesis
    import requests
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.config import SchemathesisConfig
    from schemathesis.core.result import Err
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

    def content_type_of_a_body(ctx: Any, response: Any, case: Any) -> bool | None:
        # A body-less answer (301, 204...) has no media type to check, whatever Content-Type a server framework adds.
        if not response.content:
            return None
        result: bool | None = content_type_conformance(ctx, response, case)
        return result

    valid_checks = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_of_a_body]
    # An invalid request may get any error status; what must hold is no crash and, if documented, the documented body.
    invalid_checks = [not_a_server_error, response_schema_conformance]
    modes = [(schemathesis.GenerationMode.POSITIVE, valid_checks)]
    if negative:
        modes.append((schemathesis.GenerationMode.NEGATIVE, invalid_checks))

    started = time.monotonic()
    deadline = started + time_limit
    url = url.rstrip("/")
    report = ContractReport(service=str(path), url=url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = requests.Session()
    settings = hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # each run stands alone: --seed is the way to replay one
        derandomize=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
        report_multiple_bugs=False,
        verbosity=hypothesis.Verbosity.quiet,
    )

    for api in served_apis(path, env):
        api_name, spec_file, base_path = api.name, api.file, api.base_path or ""
        try:
            schema = schemathesis.openapi.from_dict(enforced_document(api, path, env), config=SchemathesisConfig())
        except Exception as exc:  # schemathesis raises its own loader errors
            raise ContractError(f"{spec_file}: schemathesis cannot read this spec: {exc}") from exc
        base_url = url + base_path.rstrip("/")
        for operation_result in schema.get_all_operations():
            if isinstance(operation_result, Err):
                error = operation_result.err()
                where = (str(getattr(error, "method", None) or "?"), base_path.rstrip("/") + str(getattr(error, "path", None) or "?"))
                report.results.append(OperationResult(api_name, *where, None, SKIPPED, report=f"schemathesis cannot read it: {error}"))
                continue
            operation = operation_result.ok()
            result = OperationResult(api_name, operation.method, base_path.rstrip("/") + operation.path, operation.definition.raw.get("operationId"))
            report.results.append(result)
            if time.monotonic() >= deadline:
                result.status, result.report = SKIPPED, "not tested: time limit reached"
                report.timed_out = True
                continue
            for mode, checks in modes:
                outcome = _run_operation(operation, mode, checks, base_url, session, headers, request_timeout, deadline, settings, seed, result)
                if outcome == "failed":
                    break
                if outcome == "out of time":
                    report.timed_out = True
                    break
            if progress is not None:
                progress(result)
    session.close()
    report.seconds = time.monotonic() - started
    return report


def _run_operation(
    operation: Any,
    mode: Any,
    checks: list[Any],
    base_url: str,
    session: Any,
    headers: dict[str, str],
    request_timeout: float,
    deadline: float,
    settings: Any,
    seed: int | None,
    result: OperationResult,
) -> str:
    """One round of generated requests for one operation; record a failure in ``result``. Return what happened."""
    import hypothesis
    import requests
    import schemathesis
    from hypothesis.errors import FailedHealthCheck, Flaky, Unsatisfiable
    from schemathesis.errors import FailureGroup, SchemathesisError

    negative = mode == schemathesis.GenerationMode.NEGATIVE
    failures: list[str] = []
    out_of_time = False

    def check(case: Any) -> None:
        nonlocal out_of_time
        if time.monotonic() >= deadline:
            out_of_time = True
            raise _OutOfTime
        result.requests += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=request_timeout)
        except requests.RequestException as exc:
            curl = case.as_curl_command(headers=headers, base_url=base_url)
            failures.append(f"{type(exc).__name__}: {exc}\n\nReproduce with:\n\n    {curl}")
            raise
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as exc:  # its message names each failed check and ends with a curl line
            failures.append(exc.message.strip())
            raise _ContractBroken(exc.message) from None

    test: Callable[[], None] = hypothesis.given(operation.as_strategy(generation_mode=mode))(check)  # type: ignore[no-untyped-call]
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    try:
        run: Callable[[], None] = settings(test)
        run()
    except Unsatisfiable:
        if not negative:  # an operation without parameters has no invalid request: only that is expected
            result.status, result.report = SKIPPED, "schemathesis cannot generate a request for it"
    except (_ContractBroken, requests.RequestException, _OutOfTime, Flaky, FailedHealthCheck):
        pass  # recorded in failures by check(), or out of time
    except SchemathesisError as exc:  # a schema schemathesis cannot generate data for: this operation only
        if not failures:
            result.status, result.report = SKIPPED, f"cannot generate requests: {type(exc).__name__}: {exc}"
    if failures:
        # Hypothesis shrinks the failing request, and replays the smallest one last.
        result.status = FAILED
        result.report = f"{'invalid' if negative else 'valid'} request:\n{failures[-1]}"
        return "failed"
    return "out of time" if out_of_time else "done"


def format_report(report: ContractReport) -> str:
    lines = []
    for result in report.failed:
        lines.append(f"\n=== FAIL {result.label} [{result.api}] ===\n{result.report}")
    for result in report.results:
        if result.status == SKIPPED:
            lines.append(f"skipped {result.label}: {result.report}")
    lines.append(report.summary())
    return "\n".join(lines)
