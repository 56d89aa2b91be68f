"""Test tokens, signed with the service's own JWT settings."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def generate_test_token(
    user_id: str = "test-user",
    *,
    expire_in: int | None = None,
    data: Mapping[str, Any] | None = None,
    scopes: Iterable[str] | None = None,
    service: str | os.PathLike[str] | None = None,
    env: str | None = None,
) -> str:
    """A JWT for ``user_id`` that the service accepts, from ``jwt_secret``, ``jwt_audience`` and ``jwt_issuer`` in its config.

    ``scopes`` (a list of scope names) go to the token's ``scope`` claim, for operations
    whose spec ``security`` lists scopes.
    ``service`` is the service folder (default: ``MACARON_SERVICE``, else the current
    folder) and ``env`` its config overlay. Secrets listed in ``env_secrets`` are read
    from the environment, as the server does, so a token for a deployed service needs
    that service's secret in the environment.
    """
    from macaron import config as config_module

    try:
        from macaron.auth import generate_token
    except ImportError as exc:  # a macaron-core without JWT support
        raise RuntimeError(f"cannot issue a test token: this macaron-core has no macaron.auth ({exc})") from exc

    root = Path(service if service is not None else os.environ.get("MACARON_SERVICE", "."))
    # generate_token reads macaron.get_config(); point it at this service for the call only,
    # so a test process that also runs services in-process keeps its own config.
    previous = config_module._current
    config_module.set_config(config_module.load_config(root, env))
    try:
        # scopes= only when asked for: a macaron-core from before scopes still issues plain tokens.
        extra: dict[str, Any] = {"scopes": scopes} if scopes is not None else {}
        token: str = generate_token(user_id, expire_in=expire_in, data=dict(data) if data is not None else None, **extra)
    finally:
        config_module.set_config(previous)
    return token
