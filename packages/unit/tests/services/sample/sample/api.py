"""Handlers of the sample API."""

from __future__ import annotations

from typing import Any

from macaron.auth import get_token_claims, get_userid


def whoami() -> Any:
    me = {"user_id": str(get_userid())}
    if "role" in get_token_claims():
        me["role"] = get_token_claims()["role"]
    return me


def old_whoami() -> Any:
    return None, 301, {"Location": "/v1/whoami"}


def page() -> str:
    return "<!doctype html><title>sample</title><h1>Hello from sample</h1>"
