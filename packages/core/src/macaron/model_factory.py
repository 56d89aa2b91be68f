"""The model classes of an Api (``apis.<api>.<Model>``) and the converters from wire data to them, built at start-up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from macaron.closing import PART_SUFFIX, is_synthetic
from macaron.importing import DottedPathError, import_object
from macaron.models import ApiModels, Converter, Model, PolymorphicModel, WireDict, WireList, _identity, parse_datetime
from macaron.spec import DISPATCH, POLYMORPHIC_SUFFIX, Api, Response, SpecError, python_name
from macaron.validation import REF_PREFIX, Checker, Problems, escape


def is_nullable(schema: dict[str, Any]) -> bool:
    """Whether a schema accepts null (``x-nullable``/``nullable`` became a type list or anyOf with null)."""
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        return True
    return any(isinstance(branch, dict) and branch.get("type") == "null" for branch in schema.get("anyOf", ()))


def is_object_schema(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "allOf" in schema


class ModelFactory:
    """Builds the model classes of one Api and the converters that turn wire data into them."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.models = ApiModels(api.name)
        self._checkers: dict[str, Checker] = {}

    def build(self) -> ApiModels:
        definitions = self.api.definitions
        models = self.models._models

        def make(name: str) -> type[Model]:
            model = models.get(name)
            if model is None:
                dispatch = self._dispatch(name)
                # A subtype's class derives from its bases' (allOf), so they are made first.
                parents = [make(parent) for parent in dispatch["extends"]] if dispatch else []
                model = models[name] = self._class(name, definitions[name], dispatch, parents)
            return model

        for name, schema in definitions.items():
            if not is_synthetic(name) and (is_object_schema(schema) or self._dispatch(name)):
                make(name)
        for name, cls in models.items():
            properties = self._properties(definitions[name], set())
            cls._converters = {prop: self.converter(sub) for prop, sub in properties.items()}
            cls._attributes = {_attribute(prop): prop for prop in properties if _attribute(prop) != prop}
            cls._nullable = frozenset(prop for prop, sub in properties.items() if is_nullable(sub))
            dispatch = self._dispatch(name)
            if dispatch is not None and issubclass(cls, PolymorphicModel):
                cls._subtypes = {value: models[target] for value, target in dispatch["mapping"].items() if target in models}
        return self.models

    def _dispatch(self, name: str) -> dict[str, Any] | None:
        """How the polymorphic form of definition ``name`` picks a subtype, when it has a discriminator."""
        dispatch = self.api.definitions.get(name + POLYMORPHIC_SUFFIX, {}).get(DISPATCH)
        return dispatch if isinstance(dispatch, dict) else None

    def _class(self, name: str, schema: dict[str, Any], dispatch: dict[str, Any] | None = None, parents: list[type[Model]] | None = None) -> type[Model]:
        base: tuple[type, ...] = tuple(parents) if parents else ((PolymorphicModel,) if dispatch else (Model,))
        bases = base
        parent = schema.get("x-parent")
        if parent:
            bases = (_import(parent, self.api, name), *base)
        namespace: dict[str, Any] = {
            "__slots__": (),
            "__module__": f"macaron.apis.{self.api.name}",
            "__qualname__": name,
            "_name": name,
            "_api": self.api.name,
            "_schema": schema,
            "_validate": self._lazy_validate(name),
        }
        if dispatch is not None:
            namespace["_discriminator"] = dispatch["propertyName"]
            namespace["_own_value"] = next((value for value, target in dispatch["mapping"].items() if target == name), None)
        try:
            return type(name, bases, namespace)
        except TypeError as exc:
            raise SpecError(self.api.file, f"/definitions/{escape(name)}/x-parent", f"cannot mix {parent} into the model: {exc}") from exc

    def _lazy_validate(self, name: str) -> Callable[[Any], Problems]:
        # With a discriminator, a model validates as its polymorphic form: Pet.from_json checks a Cat as a Cat.
        target = name + POLYMORPHIC_SUFFIX if self._dispatch(name) else name

        # Compiled on first use: model validation is for scripts and handlers, not the request path.
        def validate(data: Any) -> Problems:
            checker = self._checkers.get(name)
            if checker is None:
                checker = self._checkers[name] = Checker({"$ref": REF_PREFIX + target}, self.api.definitions)
            model = self.models._models.get(name)
            if model is not None and model.__dict__.get("_validate") is validate:
                model._validate = checker.problems  # compiled: later calls go straight to it
            return checker.problems(data)

        return validate

    def model_of(self, schema: dict[str, Any]) -> type[Model] | None:
        """The model a ``$ref`` schema names; for a polymorphic reference, the base its subtypes derive from."""
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return None
        name = ref[len(REF_PREFIX):]
        dispatch = self.api.definitions.get(name, {}).get(DISPATCH)
        if isinstance(dispatch, dict) and dispatch.get("base"):
            name = dispatch["base"]
        return self.models._models.get(name)

    def model_statuses(self, responses: dict[int | str, Response]) -> dict[type, int]:
        """The 2xx status a returned model gets by default: the one declared with its definition, else its base's."""
        statuses: dict[type, int] = {}
        for status, response in responses.items():
            if isinstance(status, int) and 200 <= status < 300 and response.schema:
                model = self.model_of(response.schema)
                if model is not None:
                    statuses.setdefault(model, status)
        for model, status in list(statuses.items()):
            for subtype in getattr(model, "_subtypes", {}).values():
                statuses.setdefault(subtype, status)
        return statuses

    def _properties(self, schema: dict[str, Any], seen: set[str]) -> dict[str, dict[str, Any]]:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            if name in seen:
                return {}
            return self._properties(self.api.definitions.get(name, {}), seen | {name})
        props: dict[str, dict[str, Any]] = {}
        # Parts of the same object (allOf; in 2020-12 also then/else, dependentSchemas and alternatives beside
        # properties of its own): a property they describe is one of the model's.
        parts = [*schema.get("allOf", ()), *(schema[key] for key in ("then", "else") if key in schema), *(schema.get("dependentSchemas") or {}).values()]
        if "properties" in schema:
            parts += [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        for sub in parts:
            if isinstance(sub, dict):
                props.update(self._properties(sub, seen))
        for prop, sub in schema.get("properties", {}).items():
            if sub or prop not in props:  # allOf closing adds empty placeholders; keep the real schema
                props[prop] = sub
        return props

    def converter(self, schema: dict[str, Any]) -> Converter:
        """How a wire value of ``schema`` becomes a Python value."""
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            model = self.models._models.get(name)
            if model is not None:
                return model._wrap
            return self.converter(self.api.definitions.get(name, {}))
        if DISPATCH in schema:
            return self._dispatch_converter(schema[DISPATCH])
        parts = schema.get("allOf")
        if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict) and "$ref" in parts[0] and not any(schema.get("properties", {}).values()):
            # One reference with more beside it (OpenAPI 3.1's $ref siblings, readOnly among them; 3.0's nullable
            # reference): converted as what it names, its model or (a date, a typed list...) its definition.
            name = parts[0]["$ref"][len(REF_PREFIX) :].removesuffix(PART_SUFFIX)
            model = self.models._models.get(name)
            if model is not None:
                return model._wrap
            if name in self.api.definitions:
                return self.converter({"$ref": REF_PREFIX + name})
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
            return self.converter(branches[0]) if len(branches) == 1 else _identity
        types = schema.get("type")
        kind = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
        if kind == "string":
            fmt = schema.get("format")
            if fmt == "date":
                return dt.date.fromisoformat
            if fmt == "date-time":
                return parse_datetime
            return _identity
        if kind == "array" and isinstance(schema.get("items"), dict):
            item = self.converter(schema["items"])
            if item is _identity:
                return _identity
            return lambda values: WireList(values, item)
        if (kind == "object" or kind is None) and isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema:
            item = self.converter(schema["additionalProperties"])
            if item is _identity:
                return _identity
            return lambda values: WireDict(values, item)
        if kind in (None, "object") and "properties" in schema:
            return self.inline_model(schema)
        return _identity

    def _dispatch_converter(self, dispatch: dict[str, Any]) -> Converter:
        base = self.models._models.get(dispatch.get("base") or "")
        if base is not None:
            return base._wrap  # a PolymorphicModel: it picks the subtype itself
        # A discriminated oneOf written inline: no model of its own, only its alternatives'.
        prop = dispatch["propertyName"]
        table = {value: self.models._models[target]._wrap for value, target in dispatch["mapping"].items() if target in self.models._models}

        def convert(data: Any) -> Any:
            wrap = table.get(data.get(prop)) if isinstance(data, dict) and isinstance(data.get(prop), str) else None
            return data if wrap is None else wrap(data)

        return convert

    def inline_model(self, schema: dict[str, Any], name: str = "InlineObject") -> Converter:
        """A model class for an object schema written inline rather than in definitions."""
        cls: type[Model] = type(name, (Model,), {"__slots__": (), "_name": name, "_api": self.api.name, "_schema": schema})
        properties = self._properties(schema, set())
        cls._converters = {prop: self.converter(sub) for prop, sub in properties.items()}
        cls._attributes = {_attribute(prop): prop for prop in properties if _attribute(prop) != prop}
        cls._nullable = frozenset(prop for prop, sub in properties.items() if is_nullable(sub))
        checker = Checker(schema, self.api.definitions)
        cls._validate = checker.problems
        return cls._wrap


def _attribute(prop: str) -> str:
    return python_name(prop)


def _import(dotted: str, api: Api, definition: str) -> Any:
    try:
        return import_object(dotted)
    except DottedPathError as exc:
        raise SpecError(api.file, f"/definitions/{escape(definition)}/x-parent", f"cannot import '{dotted}': {exc.reason}") from exc
