"""Built-in JWT plugin: Swagger ``security`` enforced with macaron.auth, and ``/auth/version``.

A security scheme means "macaron's JWT" when it is ``type: apiKey, in: header,
name: Authorization`` (PyMacaron's convention), OpenAPI 3's ``type: http, scheme: bearer``,
or carries ``x-macaron-auth: jwt``.
``x-macaron-auth: external`` marks a scheme your own code or another plugin
checks. Any other scheme named by an operation stops start-up: a spec that says
an operation is protected must not be served unprotected by accident.
"""

from __future__ import annotations

from collections.abc import Callable
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


def security_mode(operation: Operation) -> str | None:
    """``required`` or ``optional`` when the operation's security calls for macaron's JWT, else None.

    ``security`` lists alternatives (any one will do), each a set of schemes (all
    needed). An empty alternative allows anonymous calls.
    """
    kinds = []
    for alternative in operation.security:
        if not alternative:
            kinds.append("anonymous")
            continue
        has_jwt = False
        for name, scopes in alternative.items():
            definition = operation.security_definitions.get(name)
            if definition is None:
                known = ", ".join(sorted(operation.security_definitions)) or "none"
                raise operation.error(f"security names scheme '{name}', which the spec does not define (defined: {known})")
            if scheme_kind(name, definition, operation) == "jwt":
                if scopes:
                    raise operation.error(
                        f"security scheme '{name}' lists scopes {scopes}; macaron's JWT check has no scopes, so they would not be enforced"
                    )
                has_jwt = True
        kinds.append("jwt" if has_jwt else "external")
    if "jwt" not in kinds:
        return None
    if "external" in kinds:
        raise operation.error(
            "security offers a macaron JWT or another scheme as alternatives; macaron can enforce only one: split the operation or mark the schemes"
        )
    return "optional" if "anonymous" in kinds else "required"


@hookimpl
def wrap_endpoint(
    handler: Callable[..., Any], operation: Operation, config: Config
) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    mode = security_mode(operation)
    decorated = any(name in AUTH_DECORATORS for name in operation.decorators)
    if mode is None and not decorated:
        return None
    try:
        auth.settings(config)  # a missing secret or unreadable key stops start-up, not the first request
    except ConfigError as exc:
        raise ConfigError(f"{exc} (operation {operation.name} requires JWT authentication)") from exc
    if decorated:
        return None  # x-decorate-server already checks the token
    return auth.requires_auth if mode == "required" else auth.optional_auth
