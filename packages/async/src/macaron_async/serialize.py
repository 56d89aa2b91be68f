"""Task arguments on the wire: JSON values, with macaron models tagged so the worker rebuilds them.

A model travels as ``{"__macaron_model__": "<api>.<Model>", "data": <its JSON>}``.
A plain dict that happens to hold the tag key is wrapped as
``{"__macaron_dict__": {...}}``, so no user data is ever mistaken for a model.
"""

from __future__ import annotations

from typing import Any

from macaron.models import Model, apis, from_wire, model_info, model_name, wire_data

MODEL_TAG = "__macaron_model__"
DICT_TAG = "__macaron_dict__"


class TaskArgumentError(TypeError):
    """A task argument cannot travel to a worker, or the worker cannot rebuild it."""


def _where(path: str) -> str:
    return f"argument {path}" if path else "argument"


def encode(value: Any, path: str = "") -> Any:
    """``value`` as JSON data; raises TaskArgumentError naming the argument for anything else."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, Model):
        return {MODEL_TAG: f"{model_info(value).api}.{model_name(value)}", "data": _copy(wire_data(value))}
    if isinstance(value, dict):
        encoded = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TaskArgumentError(f"{_where(path)}: dict key {key!r} is not a string; task arguments must be JSON")
            encoded[key] = encode(item, f"{path}[{key!r}]")
        return {DICT_TAG: encoded} if MODEL_TAG in encoded or DICT_TAG in encoded else encoded
    if isinstance(value, (list, tuple)):
        return [encode(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, (str, int, float)):  # subclasses: enums of str, IntEnum...
        return value
    raise TaskArgumentError(
        f"{_where(path)}: a {kind.__name__} cannot be sent to a task; send JSON values (str, number, bool, None, list, dict) or macaron models"
    )


def encode_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments of a task call, encoded; the fast path costs one type check per plain value."""
    return (
        [encode(value, str(index)) for index, value in enumerate(args)],
        {name: encode(value, name) for name, value in kwargs.items()},
    )


def _copy(value: Any) -> Any:
    # Model data is JSON already, but may hold a nested dict with a tag key: walk it like any dict.
    if type(value) is dict:
        copied = {key: _copy(item) for key, item in value.items()}
        return {DICT_TAG: copied} if MODEL_TAG in copied or DICT_TAG in copied else copied
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def decode(value: Any) -> Any:
    """Wire data back as Python values and model instances."""
    kind = type(value)
    if kind is dict:
        if MODEL_TAG in value:
            return _model(value[MODEL_TAG], value.get("data"))
        if DICT_TAG in value and len(value) == 1:
            return {key: decode(item) for key, item in value[DICT_TAG].items()}
        return {key: decode(item) for key, item in value.items()}
    if kind is list:
        return [decode(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """Model data without the dict escapes (model data holds no models)."""
    if type(value) is dict:
        if DICT_TAG in value and len(value) == 1:
            return {key: _plain(item) for key, item in value[DICT_TAG].items()}
        return {key: _plain(item) for key, item in value.items()}
    if type(value) is list:
        return [_plain(item) for item in value]
    return value


def _model(tag: Any, data: Any) -> Model:
    api_name, _, model_name = str(tag).partition(".")
    try:
        cls: type[Model] = getattr(getattr(apis, api_name), model_name)
    except AttributeError as exc:
        raise TaskArgumentError(f"a task argument is a model {tag}, which this process does not have: {exc} (is the worker running the same service?)") from None
    if not isinstance(data, dict):
        raise TaskArgumentError(f"a task argument is a model {tag} whose data is not an object: {data!r}")
    return from_wire(cls, _plain(data))


def decode_call(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    return [decode(value) for value in args], {name: decode(value) for name, value in kwargs.items()}
