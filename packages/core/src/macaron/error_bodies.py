"""Which fields of macaron's own Error body an operation's spec lets it send, decided at start-up.

macaron builds one full Error body for every failure (``status``, ``error``,
``error_description``, ``error_id``, maybe ``user_message``, ``request_id``, the
``errors`` list of a 400, an exception's extra fields). What it sends for an
operation must still obey the schema that operation declares for the status (or
its range, or ``default``), under the rule handler responses follow (unknown
fields rejected unless ``reject_unknown_fields: false``). So at start-up each
such schema is probed once with a sample of the full body, through the same
compiled validator that checks handler responses: the fields it refuses are left
out of every body sent for that status; the request id is never lost, as it is
in the ``X-Request-ID`` header of every response. An operation that declares no
schema for the status gets the full body.

A path that matches no operation (404, 405) has no spec to obey: it gets the
fields of the definition named ``Error`` of the API whose base path the request
path starts with (the longest such base path), else the full body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from macaron.spec import Api, response_key
from macaron.validation import REF_PREFIX, Checker
from macaron.variants import response_variant

log = logging.getLogger("macaron")

Body = dict[str, Any]
Fit = Callable[[Body], Body]
FitFor = Callable[[int], Fit | None]  # a status -> the fit of its Error body (None: send it whole)

# A name no spec declares: a schema that accepts it accepts any field.
_PROBE = "x-macaron-probe-unlisted-field"
# The fields macaron itself writes, with values of the types it writes them with.
_SAMPLE: Body = {
    "status": 500,
    "error": "SAMPLE_ERROR",
    "error_description": "A sample of the Error body macaron writes",
    "error_id": "0123456789abcdef0123456789abcdef",
    "user_message": "Something went wrong",
    "request_id": "0123456789abcdef",
    "errors": [{"field": "/query/sample", "message": "is required"}],
}
OWN_FIELDS = frozenset(_SAMPLE)


def _sample_status(key: int | str) -> int:
    """A status the declared response ``key`` answers: itself, the first of its range, or 500 for ``default``."""
    if isinstance(key, int):
        return key
    if key[:1].isdigit():
        return int(key[0]) * 100
    return 500


def _named_properties(schema: Any, definitions: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Every property name the schema's object (its references and parts followed) names: the extra fields it may take."""
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties") or ())
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        name = ref[len(REF_PREFIX) :]
        if name not in seen:
            names |= _named_properties(definitions.get(name), definitions, seen | {name})
    for keyword in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(keyword) or ():
            names |= _named_properties(part, definitions, seen)
    for keyword in ("then", "else"):
        names |= _named_properties(schema.get(keyword), definitions, seen)
    return names


class ErrorFields:
    """What one declared response schema accepts of macaron's Error body."""

    __slots__ = ("keep", "open", "problems", "refused")

    def __init__(self, checker: Checker, schema: dict[str, Any], definitions: Mapping[str, Any], status: int) -> None:
        body: Body = {**_SAMPLE, "status": status, _PROBE: "sample"}
        problems = checker.problems(body)
        # Leave out each field the schema refuses (unknown, or of another type) until the rest fits, or nothing more can go.
        while problems:
            refused = {p["field"].split("/")[1].replace("~1", "/").replace("~0", "~") for p in problems if p["field"].count("/") >= 1}
            refused &= set(body)
            if not refused:
                break
            body = {name: value for name, value in body.items() if name not in refused}
            problems = checker.problems(body)
        self.problems = problems  # empty: every body fitted so validates (as far as macaron's own fields go)
        self.open = _PROBE in body  # fields the schema does not name are accepted: extras go out as they are
        self.refused = frozenset(OWN_FIELDS - set(body))
        self.keep = frozenset((set(body) | _named_properties(schema, definitions)) - self.refused - {_PROBE})

    def fit(self, body: Body) -> Body:
        """``body`` with only the fields the schema accepts."""
        if self.open:
            if not self.refused.intersection(body):
                return body
            return {name: value for name, value in body.items() if name not in self.refused}
        keep = self.keep
        return {name: value for name, value in body.items() if name in keep}


# One probe per schema and status: the operations of a spec mostly share one Error.
_probed: dict[tuple[int, int], ErrorFields] = {}
_warned: set[int] = set()  # schemas already named in a warning: once, not once per operation and status


def error_fields(
    checker: Checker, schema: dict[str, Any], definitions: Mapping[str, Any], status: int, where: str, declared: int | str | None = None
) -> ErrorFields:
    """The fields of macaron's Error body that ``schema`` (compiled as ``checker``) accepts; a warning if no body can fit it.

    ``declared`` is the response key the schema is declared under (``default``, ``4XX``), named in the warning: the
    sample ``status`` is only what was probed, and a user who wrote ``default`` would look for it in vain.
    """
    validator = id(checker.validator)  # compiled validators are shared and kept: one per schema
    found = _probed.get((validator, status))
    if found is None:
        found = _probed[validator, status] = ErrorFields(checker, schema, definitions, status)
        if found.problems and validator not in _warned:
            _warned.add(validator)
            detail = "; ".join(f"{p['field'] or '/'}: {p['message']}" for p in found.problems)
            log.warning(
                "%s: macaron's Error bodies cannot match the schema declared for %s (%s), here and wherever else it is declared; "
                "they are sent with the fields it accepts",
                where,
                f"status {status}" if declared is None or isinstance(declared, int) else declared,
                detail,
            )
    return found


def is_error_key(key: int | str) -> bool:
    """Whether a declared response can answer a status macaron writes an Error body for (not 1xx or 2xx)."""
    if isinstance(key, int):
        return key >= 300
    return key == "default" or key[:1] not in ("1", "2")


def operation_fits(checkers: Mapping[int | str, Checker | None], schemas: Mapping[int | str, dict[str, Any] | None], definitions: Mapping[str, Any], where: str) -> FitFor:
    """For one operation, the fit of each status's Error body: None where the declared response has no schema (or none is declared)."""
    fits: dict[int | str, Fit | None] = {}
    for key, checker in checkers.items():
        schema = schemas.get(key)
        if not is_error_key(key) or checker is None or schema is None:
            fits[key] = None
            continue
        fields = error_fields(checker, schema, definitions, _sample_status(key), where, declared=key)
        fits[key] = fields.fit

    resolved: dict[int, Fit | None] = {}  # statuses met so far, to the fit of the response that answers them

    def fit_for(status: int) -> Fit | None:
        try:
            return resolved[status]
        except KeyError:
            key = response_key(fits, status)
            fit = resolved[status] = None if key is None else fits[key]
            return fit

    return fit_for


def unrouted_fits(apis: Mapping[str, Api]) -> list[tuple[str, Fit]]:
    """(base path, fit) of every API with a definition named ``Error``, the longest base path first: for paths no operation serves."""
    found: list[tuple[str, Fit]] = []
    for api in apis.values():
        schema = api.definitions.get("Error")
        if schema is None:
            continue
        reference = {"$ref": f"{REF_PREFIX}Error"}
        variant = response_variant(reference, api.definitions)
        checker = Checker(variant, api.definitions)
        fields = error_fields(checker, variant, api.definitions, 404, f"{api.file}: the definition Error")
        found.append((api.base_path.rstrip("/"), fields.fit))
    found.sort(key=lambda entry: len(entry[0]), reverse=True)
    return found


def unrouted_fit(fits: list[tuple[str, Fit]], path: str) -> Fit | None:
    """The fit for a request path no operation serves: that of the API whose base path it is under; None (the full body) if none."""
    for base, fit in fits:
        if not base or path == base or path.startswith(base + "/"):
            return fit
    return None
