"""Model classes: one per object definition of a spec, reached as ``apis.<api>.<Model>``.

A model instance keeps its data in wire form (the JSON the spec describes) and
converts on attribute access: ``date``/``date-time`` strings come out as
``datetime.date``/``datetime.datetime``, nested definitions as model instances
sharing the same data, so ``order.address.city = "Paris"`` changes the order.
Keeping wire form inside is what lets a request body become a model, and a model
become a response, without copying or converting the whole tree.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from macaron.errors import ModelValidationError
from macaron.spec import python_name

Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def parse_datetime(value: str) -> dt.datetime:
    # fromisoformat takes "Z" from Python 3.11 on; 3.10 needs the offset spelled out.
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return dt.datetime.fromisoformat(value)


def format_datetime(value: dt.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# JSON's scalars: returned as they are, tested inline so that most leaves cost no call.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_wire(value: Any) -> Any:
    """Any Python value a handler may use, as JSON-ready data: models, dates, tuples, nested."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, Model):
        return value._data
    if kind is dict:
        return {key: item if type(item) in _SCALARS else to_wire(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [item if type(item) in _SCALARS else to_wire(item) for item in value]
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):  # what database drivers (DynamoDB's among them) return for numbers
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def owned_wire(value: Any) -> Any:
    """``to_wire(value)`` that shares nothing with ``value``, models' data included: one pass, not a conversion then a copy."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, dict):
        return {key: item if type(item) in _SCALARS else owned_wire(item) for key, item in value.items()}
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [item if type(item) in _SCALARS else owned_wire(item) for item in value]
    if isinstance(value, Model):
        return copy_wire(value._data)
    return to_wire(value)  # dates, UUIDs, decimals: new values


def copy_wire(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), much cheaper than copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _SCALARS else copy_wire(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in _SCALARS else copy_wire(item) for item in value]
    return value


class WireList(list):  # type: ignore[type-arg]
    """The Python view of a model's array whose items need converting (models, dates).

    It writes through: ``order.lines.append(line)`` changes the order, as it would if
    the array held plain strings and came out as the model's own list.
    """

    __slots__ = ("_wire",)

    def __init__(self, wire: list[Any], convert: Converter) -> None:
        super().__init__(None if value is None else convert(value) for value in wire)
        self._wire = wire

    def _sync(self) -> None:
        self._wire[:] = [to_wire(item) for item in self]

    def append(self, item: Any) -> None:
        super().append(item)
        self._wire.append(to_wire(item))

    def extend(self, items: Any) -> None:
        super().extend(items)
        self._sync()

    def insert(self, index: Any, item: Any) -> None:
        super().insert(index, item)
        self._sync()

    def pop(self, index: Any = -1) -> Any:
        item = super().pop(index)
        self._sync()
        return item

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._sync()

    def clear(self) -> None:
        super().clear()
        self._wire.clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        super().sort(*args, **kwargs)
        self._sync()

    def reverse(self) -> None:
        super().reverse()
        self._sync()

    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self._sync()

    def __delitem__(self, index: Any) -> None:
        super().__delitem__(index)
        self._sync()

    def __iadd__(self, items: Any) -> WireList:  # type: ignore[misc]
        super().__iadd__(items)
        self._sync()
        return self


class WireDict(dict):  # type: ignore[type-arg]
    """The Python view of a typed map (``additionalProperties``) whose values need converting; writes through."""

    __slots__ = ("_wire",)

    def __init__(self, wire: dict[str, Any], convert: Converter) -> None:
        super().__init__((key, None if value is None else convert(value)) for key, value in wire.items())
        self._wire = wire

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._wire[key] = to_wire(value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        del self._wire[key]

    def pop(self, key: str, *default: Any) -> Any:
        self._wire.pop(key, None)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        super().clear()
        self._wire.clear()


class Model:
    """Base of every generated model class."""

    __slots__ = ("_data",)

    _name: ClassVar[str] = "Model"
    _api: ClassVar[str] = ""
    _schema: ClassVar[dict[str, Any]] = {}
    _converters: ClassVar[dict[str, Converter]] = {}  # property -> wire-to-Python converter
    _attributes: ClassVar[dict[str, str]] = {}  # Python attribute name -> property name
    _nullable: ClassVar[frozenset[str]] = frozenset()  # properties whose None is sent as null rather than left out
    _validate: ClassVar[Callable[[Any], list[dict[str, str]]] | None] = None

    def __init__(self, **properties: Any) -> None:
        object.__setattr__(self, "_data", {})
        for name, value in properties.items():
            setattr(self, name, value)

    @classmethod
    def _wrap(cls, data: dict[str, Any]) -> Model:
        """A model over already validated wire data, sharing it."""
        instance = cls.__new__(cls)
        object.__setattr__(instance, "_data", data)
        return instance

    @classmethod
    def from_json(cls, data: Any) -> Model:
        """A model from JSON data, validated against the definition; raises ModelValidationError.

        Dates, models and the other values attributes accept may be in it too: they are
        put in JSON form first. The model gets a copy: changing it leaves ``data`` alone.
        """
        wire = owned_wire(data)
        cls.check(wire)
        if not isinstance(wire, dict):
            raise ModelValidationError(cls._name, [{"field": "", "message": "not an object"}])
        return cls._wrap(wire)

    @classmethod
    def check(cls, data: Any) -> None:
        if cls._validate is not None:
            problems = cls._validate(data)
            if problems:
                raise ModelValidationError(cls._name, problems)

    def to_json(self) -> dict[str, Any]:
        """The model as JSON data (a copy: changing it does not change the model)."""
        result: dict[str, Any] = copy_wire(self._data)
        return result

    def validate(self) -> None:
        """Raise ModelValidationError if the model breaks its definition (missing required, wrong type)."""
        self.check(self._data)

    def __getattr__(self, name: str) -> Any:
        prop = self._attributes.get(name, name)
        converter = self._converters.get(prop)
        if converter is None:
            raise AttributeError(f"{self._name} has no property '{name}'")
        value = self._data.get(prop)
        return None if value is None else converter(value)

    def __setattr__(self, name: str, value: Any) -> None:
        prop = self._attributes.get(name, name)
        if prop not in self._converters:
            if name.startswith("_"):
                object.__setattr__(self, name, value)  # private state of an x-parent class
                return
            raise AttributeError(f"{self._name} has no property '{name}'")
        if value is None:
            if prop in self._nullable:
                self._data[prop] = None
            else:
                self._data.pop(prop, None)
        else:
            self._data[prop] = to_wire(value)

    def __delattr__(self, name: str) -> None:
        self._data.pop(self._attributes.get(name, name), None)

    def __getitem__(self, prop: str) -> Any:
        value = self._data[prop]
        converter = self._converters.get(prop, _identity)
        return None if value is None else converter(value)

    def __setitem__(self, prop: str, value: Any) -> None:
        self._data[prop] = to_wire(value)

    def __contains__(self, prop: object) -> bool:
        return prop in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return type(self) is type(other) and self._data == other._data

    def __hash__(self) -> int:
        raise TypeError(f"unhashable type: '{self._name}' (models are mutable)")

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._data.items())
        return f"{self._name}({fields})"


class PolymorphicModel(Model):
    """Base of the models of a schema with a discriminator: wire data becomes the subtype its value names.

    ``_subtypes`` maps each discriminator value this class may stand for to the model
    class it selects (the class itself, its subclasses along ``allOf``, or a ``oneOf``
    alternative). Only these classes dispatch: other models keep Model's plain ``_wrap``.
    """

    __slots__ = ()

    _discriminator: ClassVar[str] = ""  # the property whose value names the subtype
    _subtypes: ClassVar[dict[str, type[Model]]] = {}
    _own_value: ClassVar[str | None] = None  # the value selecting this very class, set by the constructor

    def __init__(self, **properties: Any) -> None:
        # Cat(name="Tom") is a Cat on the wire too: its discriminator need not be spelled out.
        object.__setattr__(self, "_data", {} if self._own_value is None else {self._discriminator: self._own_value})
        for name, value in properties.items():
            setattr(self, name, value)

    @classmethod
    def _wrap(cls, data: dict[str, Any]) -> Model:
        value = data.get(cls._discriminator)
        target = cls._subtypes.get(value, cls) if type(value) is str else cls
        instance = target.__new__(target)
        object.__setattr__(instance, "_data", data)
        return instance


# -- What a backend or a serializer may use (macaron-dynamodb, macaron-async; docs/plugins.md) ----------
# Functions rather than attributes: an attribute of a model is one of its spec's properties.


@dataclass(frozen=True)
class ModelInfo:
    """What a backend needs to know of a model class, read when asked (subtypes are set once the API is built)."""

    name: str  # the definition's name in its spec: "Pet"
    api: str  # the API it belongs to: "petstore", as in apis.petstore.Pet
    schema: dict[str, Any]  # the definition, as the engine validates it (read it, do not change it)
    attributes: Mapping[str, str]  # Python attribute -> property, where they differ ("x_id" -> "x-id")
    nullable: frozenset[str]  # properties whose None is sent as null rather than left out
    discriminator: str | None  # the property naming the subtype, for a model with a discriminator
    subtypes: Mapping[str, type[Model]]  # discriminator value -> the class it selects (empty without one)
    own_value: str | None  # the discriminator value that selects this very class


def model_info(model: type[Model] | Model) -> ModelInfo:
    """The facts of a model class (or of an instance's class) that a backend may rely on."""
    cls = model if isinstance(model, type) else type(model)
    polymorphic = issubclass(cls, PolymorphicModel) and bool(cls._discriminator)
    return ModelInfo(
        name=cls._name,
        api=cls._api,
        schema=cls._schema,
        attributes=cls._attributes,
        nullable=cls._nullable,
        discriminator=cls._discriminator if polymorphic else None,  # type: ignore[attr-defined]
        subtypes=cls._subtypes if polymorphic else {},  # type: ignore[attr-defined]
        own_value=cls._own_value if polymorphic else None,  # type: ignore[attr-defined]
    )


def model_name(model: type[Model] | Model) -> str:
    """The definition name of a model class or instance, for messages: ``model_info(model).name``."""
    return model._name


def wire_data(instance: Model) -> dict[str, Any]:
    """The instance's JSON data itself, not a copy: what a backend stores, and may update in place (a version)."""
    return instance._data  # type: ignore[no-any-return]


def from_wire(model: type[Model], data: dict[str, Any]) -> Model:
    """An instance over JSON data already valid for ``model``, sharing it (no copy, no validation).

    A model with a discriminator becomes the subtype the data names. For data from
    outside, use ``model.from_json(data)``, which validates.
    """
    return model._wrap(data)


class ApiModels:
    """The models of one API: ``apis.petstore.Pet``."""

    client: Any = None  # the API's client, when the service calls it (see macaron.client)

    def __init__(self, name: str) -> None:
        self._name = name
        self._models: dict[str, type[Model]] = {}

    def __getattr__(self, name: str) -> type[Model]:
        try:
            return self._models[name]
        except KeyError:
            pass
        for model_name, model in self._models.items():  # "Pet-Summary" as apis.x.Pet_Summary
            if python_name(model_name) == name:
                return model
        raise AttributeError(f"API '{self._name}' has no model '{name}' (it has: {', '.join(sorted(self._models)) or 'none'})")

    def __iter__(self) -> Iterator[type[Model]]:
        return iter(self._models.values())

    def __dir__(self) -> list[str]:
        return sorted(self._models)


class ApiRegistry:
    """Every loaded API's models: ``from macaron import apis; apis.petstore.Pet``."""

    def __init__(self) -> None:
        self._apis: dict[str, ApiModels] = {}

    def __getattr__(self, name: str) -> ApiModels:
        try:
            return self._apis[name]
        except KeyError:
            for api_name, models in self._apis.items():  # apis/pet-store.yaml as apis.pet_store
                if python_name(api_name) == name:
                    return models
            loaded = ", ".join(sorted(self._apis)) or "none yet: create_app() loads them"
            raise AttributeError(f"no API '{name}' is loaded (loaded: {loaded})") from None

    def _add(self, models: ApiModels) -> None:
        self._apis[models._name] = models

    def __dir__(self) -> list[str]:
        return sorted(self._apis)


apis = ApiRegistry()
