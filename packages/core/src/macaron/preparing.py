"""What the engine does to every API it loads, served or called: the engine settings applied to its schemas.

Used by :func:`macaron.app.load_apis` for the APIs a service serves and by
:func:`macaron.client.build_clients` for those it only calls, so that a client
checks requests and responses exactly as the server would.
"""

from __future__ import annotations

from typing import Any, TypeVar

from macaron.closing import close_objects
from macaron.config import Config, ConfigError
from macaron.spec import Api
from macaron.variants import read_only_setting

T = TypeVar("T")


def engine_setting(config: Config, key: str, default: T, kind: type[T]) -> T:
    """A setting of the engine from the config, of the type it must have: "no" is not false, "10MB" not a size."""
    value = config.get(key, default)
    # bool is an int to Python; neither setting takes the other's type.
    if type(value) is not kind or (isinstance(value, int) and not isinstance(value, bool) and value <= 0):
        wanted = "true or false" if kind is bool else "a positive number of bytes"
        raise ConfigError(f"{config.where()}: '{key}' must be {wanted}, not {value!r}")
    return value


def operation_schemas(api: Api) -> list[dict[str, Any]]:
    schemas = [p.schema for op in api.operations for p in op.parameters]  # a body, and objects in a query (deepObject...)
    schemas += [r.schema for op in api.operations for r in op.responses.values() if r.schema is not None]
    return schemas


def prepare_api(api: Api, config: Config) -> None:
    """Apply the engine settings to a loaded API: ``read_only_in_requests``, and with ``reject_unknown_fields`` its objects closed.

    Engine settings, not a format's: set here, so an API from any load_spec plugin follows them.
    """
    api.read_only_in_requests = read_only_setting(config)
    if engine_setting(config, "reject_unknown_fields", True, bool):  # "no" is refused, not read as true
        close_objects(api.definitions, operation_schemas(api))
