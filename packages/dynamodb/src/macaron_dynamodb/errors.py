"""Errors of persisted models, as macaron Error responses a handler can let through."""

from __future__ import annotations

from typing import Any

from macaron.errors import MacaronException


class ItemNotFound(MacaronException):
    """``load`` found no item with that key."""

    code = "ITEM_NOT_FOUND"
    status = 404


class ItemConflict(MacaronException):
    """A conditional write failed: the item changed since it was loaded, or a condition did not hold."""

    code = "ITEM_CONFLICT"
    status = 409


class ItemExists(ItemConflict):
    """A create (``save(create=True)``) found an item with the same key."""

    code = "ITEM_EXISTS"
    status = 409


class TransactionCancelled(ItemConflict):
    """DynamoDB cancelled a transaction: nothing was written.

    ``reasons`` lists, for each item that caused it, ``{index, model, key, code, message}``;
    the description says the same in words.
    """

    code = "TRANSACTION_CANCELLED"
    status = 409

    def __init__(self, description: str, reasons: list[dict[str, Any]]) -> None:
        super().__init__(description)
        self.reasons = reasons


class InvalidCursor(MacaronException):
    """A pagination cursor that this service did not hand out (or that was altered)."""

    code = "INVALID_CURSOR"
    status = 400


class DynamoDBError(MacaronException):
    """DynamoDB refused or failed a request for a reason the caller cannot fix.

    The response says only that the database failed; ``detail`` (DynamoDB's own
    message) goes to the logs, which print the exception's repr.
    """

    code = "DYNAMODB_ERROR"
    status = 500

    def __init__(self, detail: str, description: str = "The database could not serve the request") -> None:
        super().__init__(description)
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class DynamoDBUnavailable(DynamoDBError):
    """DynamoDB throttled the request or could not be reached; trying again later may work."""

    code = "DYNAMODB_UNAVAILABLE"
    status = 503

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "The database is busy or unreachable; try again later")


class TableMissing(DynamoDBError):
    """The table does not exist (yet): ``macaron dynamodb create-tables`` creates it."""
