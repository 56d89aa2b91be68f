"""Who is calling and which request this is, wherever the code runs: endpoint, task or script.

The context lives in a ContextVar, not in Flask's request, so an async task or a
client call made from a worker sees the same user id and request id as the
endpoint that started it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class CallContext:
    request_id: str | None = None
    user_id: str | None = None
    token: str | None = None  # the raw JWT, to forward to other services
    claims: dict[str, Any] = field(default_factory=dict)
    call_chain: list[str] = field(default_factory=list)  # services the call went through, first first

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "token": self.token,
            "claims": dict(self.claims),
            "call_chain": list(self.call_chain),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallContext:
        return cls(
            request_id=data.get("request_id"),
            user_id=data.get("user_id"),
            token=data.get("token"),
            claims=dict(data.get("claims") or {}),
            call_chain=list(data.get("call_chain") or []),
        )


_EMPTY = CallContext()
_current: ContextVar[CallContext] = ContextVar("macaron_call_context", default=_EMPTY)


def current() -> CallContext:
    """The context of the running request or task (an empty one outside them)."""
    return _current.get()


def update(**changes: Any) -> CallContext:
    """Change fields of the current context (for example the user id once a token is verified)."""
    context = replace(_current.get(), **changes)
    _current.set(context)
    return context


def begin(context: CallContext | None = None) -> Any:
    """Start a context (at the start of a request or task); returns the token for :func:`end`.

    Every request must begin and end its context: a worker thread serves many
    requests, and a context left set would leak one caller's identity to the next.
    """
    return _current.set(context if context is not None else CallContext())


def end(token: Any) -> None:
    _current.reset(token)


@contextmanager
def use(context: CallContext | None = None, **changes: Any) -> Iterator[CallContext]:
    """Run a block in a context: a given one, a fresh one, or the current one with some fields changed."""
    base = context if context is not None else replace(current())
    if changes:
        base = replace(base, **changes)
    token = _current.set(base)
    try:
        yield base
    finally:
        _current.reset(token)


def get_userid() -> str | None:
    """The authenticated user's id (the token's ``sub``), or None."""
    return _current.get().user_id


def get_request_id() -> str | None:
    return _current.get().request_id


def get_token() -> str | None:
    return _current.get().token


def get_claims() -> dict[str, Any]:
    return _current.get().claims
