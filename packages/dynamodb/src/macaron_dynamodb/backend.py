"""The ``dynamodb`` section of ``macaron.yaml``, and one pynamodb connection per process and setting.

::

    dynamodb:
      region: eu-west-1                        # else AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config
      endpoint_url: http://127.0.0.1:8000      # a local server; else AWS_ENDPOINT_URL_DYNAMODB, else AWS
      table_prefix: staging-                   # put before every table name
      connect_timeout: 5                       # seconds
      read_timeout: 10                         # seconds
      max_retries: 3                           # botocore's retries of throttled or failed calls

Credentials come from botocore's usual chain (environment, shared files, container
or instance roles); they never go in the config.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from pynamodb.connection import Connection

from macaron.config import Config, ConfigError
from macaron_dynamodb.errors import DynamoDBError, DynamoDBUnavailable, TableMissing

SECTION = "dynamodb"
CONTROL = {"CreateTable", "DeleteTable", "DescribeTable", "UpdateTable", "DescribeTimeToLive", "UpdateTimeToLive", "ListTables"}
THROTTLED = {
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "LimitExceededException",
    "InternalServerError",
    "ServiceUnavailable",
}


@dataclass(frozen=True)
class Settings:
    region: str | None = None
    endpoint_url: str | None = None
    table_prefix: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_retries: int = 3

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        section = config.section(SECTION)
        known = {"region", "endpoint_url", "table_prefix", "connect_timeout", "read_timeout", "max_retries"}
        unknown = sorted(set(section) - known)
        where = f"{config.root / 'macaron.yaml' if config.root else 'the configuration'}: {SECTION}"
        if unknown:
            raise ConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for key in ("region", "endpoint_url", "table_prefix"):
            value = section.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key} must be a string")
            values[key] = value
        endpoint = values.get("endpoint_url")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.endpoint_url must be an http:// or https:// URL, not '{endpoint}'")
        for key in ("connect_timeout", "read_timeout"):
            value = section.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{where}.{key} must be a positive number of seconds")
            values[key] = float(value)
        retries = section.get("max_retries")
        if retries is not None:
            if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
                raise ConfigError(f"{where}.max_retries must be a whole number, 0 or more")
            values["max_retries"] = retries
        return cls(**values)


class ConditionFailed(Exception):
    """A write's condition did not hold (DynamoDB's ConditionalCheckFailedException).

    ``item`` is the item as it was, when the request asked for it (ReturnValuesOnConditionCheckFailure).
    """

    def __init__(self, message: str, item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.item = item


class Cancelled(Exception):
    """DynamoDB cancelled a transaction; ``reasons`` has one entry (code, message) or None per item.

    ``items`` has, per item, the item as it was when its request asked for it, else None.
    """

    def __init__(self, reasons: list[tuple[str, str | None] | None], items: list[dict[str, Any] | None] | None = None) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons
        self.items = items or [None] * len(reasons)


class Backend:
    """Calls DynamoDB through pynamodb's connection, mapping its failures to macaron errors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @property
    def connection(self) -> Connection:
        connection = self._connection
        if connection is None:
            with self._lock:
                connection = self._connection
                if connection is None:
                    connection = self._connection = Connection(
                        region=self.settings.region,
                        host=self.settings.endpoint_url,
                        connect_timeout_seconds=self.settings.connect_timeout,
                        read_timeout_seconds=self.settings.read_timeout,
                        max_retry_attempts=self.settings.max_retries,
                    )
        return connection

    def forget_connection(self) -> None:
        self._connection = None

    def call(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            if operation in CONTROL:
                # pynamodb's dispatch adds ReturnConsumedCapacity, which these operations refuse.
                control: dict[str, Any] = self.connection._make_api_call(operation, arguments)
                return control
            result: dict[str, Any] = self.connection.dispatch(operation, arguments)
            return result
        except ClientError as exc:
            raise self._error(operation, arguments, exc) from exc
        except (EndpointConnectionError, NoCredentialsError, NoRegionError) as exc:
            raise _unreachable(operation, exc) from exc
        except BotoCoreError as exc:
            raise DynamoDBUnavailable(f"{operation}: {exc}") from exc

    def _error(self, operation: str, arguments: dict[str, Any], exc: ClientError) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", exc))
        if code == "ConditionalCheckFailedException":
            # pynamodb's error keeps only the Error part of the response; botocore's own (its cause) has the Item.
            original = exc.__cause__ if isinstance(exc.__cause__, ClientError) else exc
            return ConditionFailed(message, original.response.get("Item"))
        if code == "TransactionCanceledException":
            raw = getattr(exc, "cancellation_reasons", None) or []
            return Cancelled(
                [(reason.code, reason.message) if reason is not None else None for reason in raw],
                [getattr(reason, "raw_item", None) for reason in raw],
            )
        if code == "ResourceNotFoundException":
            table = arguments.get("TableName") or ", ".join(arguments.get("RequestItems", {})) or "?"
            return TableMissing(f"{operation} on table {table}: {message} (create it with `macaron dynamodb create-tables`)")
        if code in THROTTLED:
            return DynamoDBUnavailable(f"{operation}: {code}: {message}")
        return DynamoDBError(f"{operation}: {code}: {message}")


def _unreachable(operation: str, exc: Exception) -> DynamoDBError:
    if isinstance(exc, NoRegionError):
        return DynamoDBError(f"{operation}: no AWS region: set dynamodb.region in macaron.yaml or AWS_DEFAULT_REGION")
    if isinstance(exc, NoCredentialsError):
        return DynamoDBError(f"{operation}: no AWS credentials found (environment, ~/.aws/credentials or an instance role)")
    return DynamoDBUnavailable(f"{operation}: {exc}")


_backends: dict[Settings, Backend] = {}
_backends_lock = threading.Lock()


def backend_for(settings: Settings) -> Backend:
    """The process's Backend for these settings: models configured alike share a connection pool."""
    backend = _backends.get(settings)
    if backend is None:
        with _backends_lock:
            backend = _backends.setdefault(settings, Backend(settings))
    return backend


def _after_fork() -> None:
    # A forked worker (gunicorn with preload) must not share the parent's sockets.
    for backend in list(_backends.values()):
        backend.forget_connection()
        backend._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
