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
    from macaron.auth import generate_token
    from macaron.config import load_config, using_config

    root = Path(service if service is not None else os.environ.get("MACARON_SERVICE", "."))
    # generate_token reads macaron.get_config(); point it at this service for the call only,
    # so a test process that also runs services in-process keeps its own config.
    with using_config(load_config(root, env)):
        return generate_token(user_id, expire_in=expire_in, data=dict(data) if data is not None else None, scopes=scopes)
