"""CORS for a service, off by default; ``cors:`` in ``macaron.yaml`` turns on an allow-list of origins.

Done by hand, as a WSGI middleware installed only when configured: a service
without ``cors`` pays nothing per request, and error responses (404, 500...) get
the same headers as the others, so a browser can read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from macaron.config import Config, ConfigError

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

KEYS = ("origins", "methods", "headers", "expose_headers", "credentials", "max_age")
DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
KNOWN_METHODS = frozenset((*DEFAULT_METHODS, "OPTIONS"))
DEFAULT_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
DEFAULT_EXPOSE = ("X-Request-ID",)
DEFAULT_MAX_AGE = 600
_ORIGIN = re.compile(r"(https?)://(\*\.)?([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:]+\])(:[0-9]{1,5})?")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True)
class CorsSettings:
    origins: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]  # origins with a '*.' subdomain wildcard
    any_origin: bool
    methods: str
    headers: str
    expose_headers: str
    credentials: bool
    max_age: int

    def allows(self, origin: str) -> bool:
        if self.any_origin or origin in self.origins:
            return True
        return any(pattern.fullmatch(origin) for pattern in self.patterns)


def _names(section: dict[str, Any], key: str, default: tuple[str, ...], where: str) -> list[str]:
    value = section.get(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(item, str) and _TOKEN.fullmatch(item) for item in value):
        raise ConfigError(f"{where}: cors.{key} must be a list of names, not {value!r}")
    return value


def cors_settings(config: Config) -> CorsSettings | None:
    """The CORS settings of ``config``, None when CORS is off; a bad value stops start-up naming it."""
    section = config.get("cors")
    if section is None or section is False:
        return None
    where = config.where()
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: cors must be a mapping with at least 'origins', not {section!r}")
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} in cors: {', '.join(unknown)} (known: {', '.join(KEYS)})")
    origins = section.get("origins")
    if not isinstance(origins, list) or not origins or not all(isinstance(origin, str) for origin in origins):
        raise ConfigError(f"{where}: cors.origins must be a non-empty list of origins such as https://app.example.com, or ['*']")
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    any_origin = False
    for origin in origins:
        if origin == "*":
            any_origin = True
            continue
        normalised = origin.lower()
        match = _ORIGIN.fullmatch(normalised)
        if match is None:
            raise ConfigError(
                f"{where}: cors.origins: {origin!r} is not an origin; write scheme://host[:port] with no path or "
                "trailing slash, e.g. https://app.example.com or https://*.example.com"
            )
        if match.group(2):
            patterns.append(re.compile(re.escape(normalised).replace(r"\*\.", r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.", 1)))
        else:
            exact.add(normalised)
    credentials = section.get("credentials", False)
    if not isinstance(credentials, bool):
        raise ConfigError(f"{where}: cors.credentials must be true or false, not {credentials!r}")
    if credentials and any_origin:
        raise ConfigError(f"{where}: cors.credentials cannot be true with origins ['*']: browsers refuse it; list the origins")
    methods = [method.upper() for method in _names(section, "methods", DEFAULT_METHODS, where)]
    strange = [method for method in methods if method not in KNOWN_METHODS]
    if strange:
        raise ConfigError(f"{where}: cors.methods: unknown HTTP method {', '.join(strange)}")
    max_age = section.get("max_age", DEFAULT_MAX_AGE)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigError(f"{where}: cors.max_age must be a number of seconds (0 or more), not {max_age!r}")
    return CorsSettings(
        origins=frozenset(exact),
        patterns=tuple(patterns),
        any_origin=any_origin,
        methods=", ".join(methods),
        headers=", ".join(_names(section, "headers", DEFAULT_HEADERS, where)),
        expose_headers=", ".join(_names(section, "expose_headers", DEFAULT_EXPOSE, where)),
        credentials=credentials,
        max_age=max_age,
    )


class CorsMiddleware:
    """Answers preflights from allowed origins and adds CORS headers to their responses."""

    def __init__(self, app: WSGIApp, settings: CorsSettings) -> None:
        self.app = app
        self.settings = settings
        allow = [("Access-Control-Allow-Credentials", "true")] if settings.credentials else []
        self.preflight_headers = [
            *allow,
            ("Access-Control-Allow-Methods", settings.methods),
            ("Access-Control-Allow-Headers", settings.headers),
            ("Access-Control-Max-Age", str(settings.max_age)),
            ("Vary", "Origin"),
            ("Content-Length", "0"),
        ]
        self.response_headers = [*allow, ("Vary", "Origin")]
        if settings.expose_headers:
            self.response_headers.append(("Access-Control-Expose-Headers", settings.expose_headers))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        settings = self.settings
        if origin is None or not settings.allows(origin):
            # The answer depends on Origin even when it carries no CORS header: caches must know.
            def vary(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                headers.append(("Vary", "Origin"))
                return start_response(status, headers, exc_info)

            return self.app(environ, vary)
        allowed = "*" if settings.any_origin and not settings.credentials else origin
        if environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            start_response("204 No Content", [("Access-Control-Allow-Origin", allowed), *self.preflight_headers])
            return [b""]
        extra = [("Access-Control-Allow-Origin", allowed), *self.response_headers]

        def add_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(extra)
            return start_response(status, headers, exc_info)

        return self.app(environ, add_cors)
