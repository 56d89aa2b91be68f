"""Built-in JWT plugin: Swagger ``security`` enforced with macaron.auth, and ``/auth/version``.

A security scheme means "macaron's JWT" when it is ``type: apiKey, in: header,
name: Authorization`` (PyMacaron's convention), OpenAPI 3's ``type: http, scheme: bearer``,
or carries ``x-macaron-auth: jwt``.
``x-macaron-auth: external`` marks a scheme your own code or another plugin
checks. Any other scheme named by an operation stops start-up: a spec that says
an operation is protected must not be served unprotected by accident.

Scopes an operation lists on a JWT scheme are required of the token (403
``INSUFFICIENT_SCOPE`` without them). They are resolved here once per operation;
a request costs a set comparison. A scope that an oauth2 scheme's ``scopes`` map
(Swagger 2) or flows (OpenAPI 3) does not declare stops start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from macaron import auth
from macaron.config import Config, ConfigError
from macaron.hookspecs import hookimpl
from macaron.spec import Operation, SpecError

SPEC = Path(__file__).with_name("macaron_auth.yaml")
MARKER = "x-macaron-auth"
AUTH_DECORATORS = ("macaron.auth.requires_auth", "macaron.auth.optional_auth")


@hookimpl
def register_apis(config: Config) -> list[Path]:
    # /auth/version exists only where tokens can be checked: a service without JWT settings starts without it.
    return [SPEC] if auth.is_configured(config) else []


def scheme_kind(name: str, definition: dict[str, Any], operation: Operation) -> str:
    """``jwt`` when macaron checks the scheme, ``external`` when something else does."""
    marker = definition.get(MARKER)
    if marker is not None:
        if marker in ("jwt", "external"):
            return str(marker)
        raise SpecError(operation.file, f"{operation.security_pointer}/{name}/{MARKER}", f"must be 'jwt' or 'external', not {marker!r}")
    if (
        definition.get("type") == "apiKey"
        and definition.get("in") == "header"
        and str(definition.get("name", "")).lower() == "authorization"
    ) or (definition.get("type") == "http" and str(definition.get("scheme", "")).lower() == "bearer"):
        return "jwt"
    raise SpecError(
        operation.file,
        f"{operation.security_pointer}/{name}",
        f"macaron cannot check security scheme '{name}' (type {definition.get('type')}), which operation {operation.name} requires: "
        f"add '{MARKER}: jwt' to check it as a macaron JWT, or '{MARKER}: external' if your code or a plugin checks it",
    )


@dataclass(frozen=True)
class Security:
    """What an operation's ``security`` asks of macaron's JWT check, worked out once at start-up."""

    mode: str | None  # "required", "optional" (anonymous callers allowed) or None (not macaron's to check)
    scopes: tuple[tuple[str, ...], ...] = ()  # alternatives, each a set of scopes all needed; () = none needed


def operation_security(operation: Operation) -> Security:
    """The JWT check that the operation's ``security`` calls for; a SpecError if macaron cannot enforce it.

    ``security`` lists alternatives (any one will do), each a set of schemes (all
    needed). An empty alternative allows anonymous calls. The scopes an
    alternative lists on its JWT schemes are all needed, from the one token; a token
    passes with the scopes of any one JWT alternative.
    """
    kinds = []
    alternatives: list[tuple[str, ...]] = []
    for alternative in operation.security:
        if not alternative:
            kinds.append("anonymous")
            continue
        has_jwt = False
        needed: list[str] = []
        for name, scopes in alternative.items():
            definition = operation.security_definitions.get(name)
            if definition is None:
                known = ", ".join(sorted(operation.security_definitions)) or "none"
                raise operation.error(f"security names scheme '{name}', which the spec does not define (defined: {known})")
            if scheme_kind(name, definition, operation) == "jwt":
                has_jwt = True
                needed.extend(_checked_scopes(name, scopes, definition, operation))
        if has_jwt:
            alternatives.append(tuple(dict.fromkeys(needed)))
        kinds.append("jwt" if has_jwt else "external")
    if "jwt" not in kinds:
        return Security(None)
    if "external" in kinds:
        raise operation.error(
            "security offers a macaron JWT or another scheme as alternatives; macaron can enforce only one: split the operation or mark the schemes"
        )
    # An alternative without scopes lets any valid token through, whatever the others ask.
    needs = () if () in alternatives else tuple(dict.fromkeys(alternatives))
    return Security("optional" if "anonymous" in kinds else "required", needs)


def declared_scopes(definition: dict[str, Any]) -> set[str] | None:
    """The scopes an oauth2 scheme declares (Swagger 2 ``scopes``, OpenAPI 3 every flow's), or None if it has no map."""
    if definition.get("type") != "oauth2":
        return None
    maps = [definition["scopes"]] if "scopes" in definition else []
    flows = definition.get("flows")
    if isinstance(flows, dict):
        maps += [flow["scopes"] for flow in flows.values() if isinstance(flow, dict) and "scopes" in flow]
    if not maps:
        return None
    return {name for scopes in maps if isinstance(scopes, dict) for name in scopes}


def _checked_scopes(name: str, scopes: Any, definition: dict[str, Any], operation: Operation) -> list[str]:
    if not isinstance(scopes, list):
        raise operation.error(f"security scheme '{name}' must list scopes (a list, maybe empty), not {scopes!r}")
    for scope in scopes:
        if not isinstance(scope, str) or not auth.SCOPE_NAME.fullmatch(scope):
            raise operation.error(
                f"security scheme '{name}' lists {scope!r}, which is not a scope name (printable ASCII, no space, quote or backslash; RFC 6749 §3.3)"
            )
    declared = declared_scopes(definition)
    if declared is not None:
        unknown = [scope for scope in scopes if scope not in declared]
        if unknown:
            plural = "s" if len(unknown) > 1 else ""
            raise operation.error(
                f"security scheme '{name}' lists scope{plural} {', '.join(repr(scope) for scope in unknown)}, which "
                f"{operation.security_pointer}/{name} does not declare (declared: {', '.join(sorted(declared)) or 'none'})"
            )
    return list(scopes)


@hookimpl
def wrap_endpoint(
    handler: Callable[..., Any], operation: Operation, config: Config
) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    security = operation_security(operation)
    decorated = any(name in AUTH_DECORATORS for name in operation.decorators)
    if security.mode is None and not decorated:
        return None
    try:
        auth.settings(config)  # a missing secret or unreadable key stops start-up, not the first request
    except ConfigError as exc:
        raise ConfigError(f"{exc} (operation {operation.name} requires JWT authentication)") from exc
    if security.scopes:
        # Even under x-decorate-server: its decorator cannot know the spec's scopes. The token it
        # checks again comes from the verified-token cache.
        return auth.security_guard(required=security.mode == "required", scopes=security.scopes)
    if decorated:
        return None  # x-decorate-server already checks the token
    return auth.requires_auth if security.mode == "required" else auth.optional_auth
