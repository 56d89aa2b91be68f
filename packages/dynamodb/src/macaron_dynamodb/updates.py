"""Partial updates (DynamoDB's UpdateItem) of persisted models, checked against the spec before they are sent.

An update names its changes by property: ``set`` (a new value, validated against
the property's schema), ``add`` (a number added atomically), ``remove``, ``append``
(items added at the end of a list). What the spec promises about the stored item
must still hold after it, without reading the item first, so:

- a value is checked against its property's schema, as ``save`` checks the model;
- ``add`` takes a number the property's type accepts; the property's ``minimum`` and
  ``maximum`` become a condition on the stored value, so an atomic decrement cannot
  take a stock below 0;
- ``append`` checks the new items against the list's ``items``; ``maxItems`` becomes a
  condition on the stored list's size; a list with ``uniqueItems`` is refused (no
  expression can check it);
- keys, the version and the discriminator cannot be changed, required properties
  cannot be removed, and an update that may create the item must give every
  required property.

When DynamoDB refuses the condition, it hands back the item as it was
(ReturnValuesOnConditionCheckFailure), and :func:`diagnose` says which part failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, Update

from macaron.errors import ModelValidationError
from macaron.models import Model, PolymorphicModel, to_wire
from macaron.schemas import Checker, escape
from macaron_dynamodb.codec import REF_PREFIX, AttributeValue, DecoderFactory, EncodeError, encode

if TYPE_CHECKING:
    from macaron_dynamodb.persistence import Table

Problems = list[dict[str, str]]
ONE: AttributeValue = {"N": "1"}
EMPTY_LIST: AttributeValue = {"L": []}


class Bound:
    """A limit of a number property (or of a list's length) that an ``add`` (or ``append``) could cross."""

    __slots__ = ("delta", "exclusive", "limit", "lower", "prop", "size")

    def __init__(self, prop: str, limit: Decimal, lower: bool, exclusive: bool, delta: Decimal, size: bool = False) -> None:
        self.prop = prop
        self.limit = limit
        self.lower = lower
        self.exclusive = exclusive
        self.delta = delta
        self.size = size  # a bound on the list's length (maxItems), not on a number

    def holds(self, old: AttributeValue | None) -> bool:
        """Whether the stored value ``old`` (None: missing) plus the change stays within the bound."""
        result = self.result(old)
        if self.lower:
            return result > self.limit if self.exclusive else result >= self.limit
        return result < self.limit if self.exclusive else result <= self.limit

    def result(self, old: AttributeValue | None) -> Decimal:
        if old is None:
            return self.delta  # ADD and list_append(if_not_exists(...)) start from 0 and []
        if self.size:
            return len(old.get("L") or ()) + self.delta
        try:
            return Decimal(old["N"]) + self.delta
        except (KeyError, InvalidOperation):
            return self.delta

    def condition(self) -> Condition | None:
        """The condition keeping the stored value within the bound, or None when nothing stored could cross it."""
        path = Path([self.prop])
        if self.size:
            # size(list) + n <= max  <=>  size(list) <= max - n
            threshold = self.limit - self.delta
            within: Condition = size(path) <= int(threshold)  # type: ignore[no-untyped-call]  # pynamodb leaves size() unannotated
        else:
            if (self.lower and self.delta >= 0) or (not self.lower and self.delta <= 0):
                return None  # moving away from the limit: a valid stored value stays valid
            threshold = self.limit - self.delta
            value = Value({"N": _number_text(threshold)})
            if self.lower:
                within = path > value if self.exclusive else path >= value
            else:
                within = path < value if self.exclusive else path <= value
        # A missing attribute counts as 0 (or []): allowed only when the change alone fits. The
        # existence test comes first: moto's server fails on size() of a missing attribute otherwise.
        return path.does_not_exist() | within if self.holds(None) else within

    def describe(self, old: AttributeValue | None) -> str:
        if self.size:
            return f"{self.prop} would hold {self.result(old)} items, more than its maxItems {self.limit}"
        keyword = ("exclusiveMinimum" if self.exclusive else "minimum") if self.lower else ("exclusiveMaximum" if self.exclusive else "maximum")
        return f"{self.prop} would become {_number_text(self.result(old))}, beyond its {keyword} {_number_text(self.limit)}"


class Rules:
    """What an update may do to the items of one model class, read from its definition once, on its first update."""

    def __init__(self, model: type[Model], table: Table, definitions: Mapping[str, dict[str, Any]]) -> None:
        self.model = model
        self.name = model._name
        self.definitions = definitions
        schema = definitions.get(model._name) or model._schema
        self.properties = DecoderFactory(dict(definitions)).properties(schema)
        self.required = frozenset(self._required(schema, frozenset()))
        spec = table.spec
        self.fixed: dict[str, str] = {name: "is part of the key: an update cannot change it (save the item under its new key, delete the old one)" for name in table.key_names}
        if spec.version is not None:
            self.fixed[spec.version] = "is the version: every update adds one to it"
        self.discriminator: str | None = None
        self.own_value: str | None = None
        if issubclass(model, PolymorphicModel) and model._discriminator:
            self.discriminator = model._discriminator
            self.own_value = model._own_value
            self.fixed[self.discriminator] = "is the discriminator: an update cannot change an item's kind (save it as its new kind)"
        self._checkers: dict[str, Checker] = {}
        self._items: dict[str, Checker] = {}

    def _required(self, schema: dict[str, Any], seen: frozenset[str]) -> set[str]:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX) :]
            return set() if name in seen else self._required(self.definitions.get(name, {}), seen | {name})
        found = set(schema.get("required") or ())
        for part in schema.get("allOf", ()):
            if isinstance(part, dict):
                found |= self._required(part, seen)
        return found

    def resolve(self, schema: Any) -> dict[str, Any]:
        """A property's schema through its ``$ref``s, and without the ``null`` branch of a nullable one."""
        for _ in range(32):  # a bounded walk: a $ref cycle among non-object schemas is not a number or a list anyway
            if not isinstance(schema, dict):
                return {}
            if "$ref" in schema:
                schema = self.definitions.get(schema["$ref"][len(REF_PREFIX) :], {})
                continue
            branches = [b for b in schema.get("anyOf", ()) if not (isinstance(b, dict) and b.get("type") == "null")]
            if "anyOf" in schema and len(branches) == 1 and "type" not in schema:
                schema = branches[0]
                continue
            return schema
        return {}

    def kinds(self, prop: str) -> set[str]:
        schema = self.resolve(self.properties[prop])
        types = schema.get("type")
        if isinstance(types, list):
            return {str(t) for t in types if t != "null"}
        if isinstance(types, str):
            return {types}
        if "properties" in schema or "allOf" in schema or "x-dispatch" in schema:
            return {"object"}
        return set()

    def checker(self, prop: str) -> Checker:
        checker = self._checkers.get(prop)
        if checker is None:
            checker = self._checkers[prop] = Checker(self.properties[prop], dict(self.definitions), prefix="/" + escape(prop))
        return checker

    def item_checker(self, prop: str) -> Checker:
        checker = self._items.get(prop)
        if checker is None:
            items = self.resolve(self.properties[prop]).get("items")
            checker = self._items[prop] = Checker(items if isinstance(items, dict) else {}, dict(self.definitions), prefix=f"/{escape(prop)}/-")
        return checker

    def unknown(self, prop: str) -> dict[str, str]:
        known = ", ".join(sorted(self.properties)) or "none"
        return {"field": "/" + escape(prop), "message": f"is not a property of {self.name} (its properties: {known})"}


class UpdatePlan:
    """One update, checked and turned into UpdateItem's arguments; ``diagnose`` explains a failed condition."""

    __slots__ = ("arguments", "bounds", "create", "custom", "kind_values", "rules", "table")

    def __init__(
        self,
        table: Table,
        model: type[Model],
        key: dict[str, AttributeValue],
        set_: Mapping[str, Any] | None,
        add: Mapping[str, Any] | None,
        remove: Iterable[str] | str | None,
        append: Mapping[str, Any] | None,
        condition: Condition | None,
        create: bool,
    ) -> None:
        from macaron_dynamodb.persistence import Expression

        self.table = table
        self.rules = rules = table.rules(model)
        self.create = create
        self.custom = condition is not None
        self.bounds: list[Bound] = []
        self.kind_values: tuple[str, ...] = ()
        problems: Problems = []
        actions: list[Action] = []
        changed: dict[str, str] = {}  # property -> the clause that changes it
        provided: set[str] = set(table.key_names)

        def accept(name: str, clause: str) -> str | None:
            prop = rules.model._attributes.get(name, name) if isinstance(name, str) else name
            if not isinstance(prop, str) or prop not in rules.properties:
                problems.append(rules.unknown(str(prop)))
                return None
            if prop in rules.fixed:
                problems.append({"field": "/" + escape(prop), "message": rules.fixed[prop]})
                return None
            if prop in changed:
                problems.append({"field": "/" + escape(prop), "message": f"is changed twice (in {changed[prop]} and {clause}): one change per property"})
                return None
            changed[prop] = clause
            return prop

        def encoded(prop: str, value: Any, path: str) -> AttributeValue | None:
            try:
                return encode(value, path)
            except EncodeError as exc:
                problems.append({"field": exc.path, "message": exc.message})
                return None

        removals: list[str] = []
        for name, value in _pairs(set_, "set"):
            prop = accept(name, "set")
            if prop is None:
                continue
            if value is None and prop not in rules.model._nullable:
                removals.append(prop)  # as `model.prop = None` does: the property goes away
                continue
            wire = to_wire(value)
            found = rules.checker(prop).problems(wire)
            if found:
                problems.extend(found)
                continue
            attribute = encoded(prop, wire, "/" + escape(prop))
            if attribute is not None:
                actions.append(Path([prop]).set(Value(attribute)))
                if value is not None:
                    provided.add(prop)

        for name, value in _pairs(add, "add"):
            prop = accept(name, "add")
            if prop is not None:
                self._add(prop, value, problems, actions, encoded)
                provided.add(prop)

        for name, values in _pairs(append, "append"):
            prop = accept(name, "append")
            if prop is not None:
                self._append(prop, values, problems, actions, encoded)
                provided.add(prop)

        if isinstance(remove, str):
            remove = [remove]
        for name in remove or ():
            prop = accept(name, "remove")
            if prop is not None:
                removals.append(prop)
        for prop in removals:
            if prop in rules.required:
                problems.append({"field": "/" + escape(prop), "message": f"is required by {rules.name}: an update cannot remove it"})
            else:
                actions.append(Path([prop]).remove())

        version = table.spec.version
        if version is not None:
            actions.append(Path([version]).add(Value(ONE)))  # a missing version (a new item) becomes 1, as save() starts it
            provided.add(version)
        hash_path = Path([table.spec.hash_key])
        existence: Condition | None = None
        kind = table.kind_filter(model)
        if create:
            if rules.discriminator is not None and rules.own_value is not None:
                # A created item is of the class updated: Cat.update(..., create=True) makes a Cat.
                d = Path([rules.discriminator])
                actions.append(d.set(d | Value({"S": rules.own_value})))
                provided.add(rules.discriminator)
            missing = sorted(rules.required - provided)
            problems.extend(
                {"field": "/" + escape(prop), "message": "is required: with create=True the update may create the item, so it must set this property"}
                for prop in missing
            )
            if kind is not None:
                kind = kind | hash_path.does_not_exist()
        else:
            existence = hash_path.exists()
        if kind is not None and issubclass(model, PolymorphicModel):
            self.kind_values = tuple(model._subtypes)
        if problems:
            raise ModelValidationError(rules.name, problems)
        if not actions:
            raise TypeError(f"{rules.name}.update: nothing to change (give set, add, remove or append)")

        expression = Expression()
        mine = [c for c in (existence, kind, *(b.condition() for b in self.bounds)) if c is not None]
        condition_text = expression.add(condition, *mine)
        update_text = Update(*actions).serialize(expression.names, expression.values)  # type: ignore[arg-type]  # pynamodb's hint is too narrow
        arguments: dict[str, Any] = {"TableName": table.name, "Key": key, "UpdateExpression": update_text}
        if condition_text is not None:
            arguments["ConditionExpression"] = condition_text
            # On failure DynamoDB returns the item as it was: diagnose() reads it, without a second call.
            arguments["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self.arguments = expression.into(arguments)

    def _add(self, prop: str, value: Any, problems: Problems, actions: list[Action], encoded: Any) -> None:
        rules = self.rules
        field = "/" + escape(prop)
        kinds = rules.kinds(prop)
        if not kinds & {"integer", "number"}:
            problems.append({"field": field, "message": f"is {'/'.join(sorted(kinds)) or 'untyped'}: add takes number properties only"})
            return
        if type(value) is bool or not isinstance(value, (int, float)):
            problems.append({"field": field, "message": f"add takes a number, not {type(value).__name__} {value!r}"})
            return
        if isinstance(value, float) and "number" not in kinds:
            if not value.is_integer():
                problems.append({"field": field, "message": f"is an integer: add {value!r} would make it a fraction"})
                return
            value = int(value)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append({"field": field, "message": f"{value} cannot be stored (DynamoDB numbers are finite)"})
            return
        delta = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        schema = rules.resolve(rules.properties[prop])
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 and delta % Decimal(repr(step)) != 0:
            problems.append({"field": field, "message": f"is a multiple of {step}: adding {value!r} would break it"})
            return
        for lower, keyword, flag in ((True, "minimum", "exclusiveMinimum"), (False, "maximum", "exclusiveMaximum")):
            limit, exclusive = schema.get(keyword), schema.get(flag)
            if isinstance(exclusive, (int, float)) and not isinstance(exclusive, bool):  # JSON Schema 2020-12: the bound itself
                self.bounds.append(Bound(prop, _decimal(exclusive), lower, True, delta))
            if isinstance(limit, (int, float)) and not isinstance(limit, bool):  # draft 4: exclusive is a flag on it
                self.bounds.append(Bound(prop, _decimal(limit), lower, exclusive is True, delta))
        attribute = encoded(prop, value, field)
        if attribute is not None:
            actions.append(Path([prop]).add(Value(attribute)))

    def _append(self, prop: str, values: Any, problems: Problems, actions: list[Action], encoded: Any) -> None:
        rules = self.rules
        field = "/" + escape(prop)
        kinds = rules.kinds(prop)
        if "array" not in kinds:
            problems.append({"field": field, "message": f"is {'/'.join(sorted(kinds)) or 'untyped'}: append takes list properties only"})
            return
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            problems.append({"field": field, "message": f"append takes a list of the items to add, not {type(values).__name__}"})
            return
        schema = rules.resolve(rules.properties[prop])
        if schema.get("uniqueItems") is True:
            problems.append({"field": field, "message": "has uniqueItems, which no update expression can check: save the item (or use modify()) instead"})
            return
        wire = [to_wire(value) for value in values]
        checker = rules.item_checker(prop)
        found = [problem for item in wire for problem in checker.problems(item)]
        if found:
            problems.extend(found)
            return
        most = schema.get("maxItems")
        if isinstance(most, int) and not isinstance(most, bool):
            if len(wire) > most:
                problems.append({"field": field, "message": f"holds at most {most} items: {len(wire)} cannot be appended"})
                return
            self.bounds.append(Bound(prop, Decimal(most), False, False, Decimal(len(wire)), size=True))
        attribute = encoded(prop, wire, field)
        if attribute is not None:
            path = Path([prop])
            actions.append(path.set((path | Value(EMPTY_LIST)).append(Value(attribute))))

    def diagnose(self, old: dict[str, AttributeValue] | None) -> tuple[bool, str]:
        """Why the condition failed, from the item as it was: (the item is missing or of another kind, the reason)."""
        if old is None:
            if not self.create:
                return True, "not found"
        elif self.kind_values and self.rules.discriminator is not None:
            tag = (old.get(self.rules.discriminator) or {}).get("S")
            if tag not in self.kind_values:
                return True, f"the item is a {tag}" if tag else "the item is of another kind"
        for bound in self.bounds:
            if not bound.holds(None if old is None else old.get(bound.prop)):
                return False, bound.describe(None if old is None else old.get(bound.prop))
        return False, "your condition failed" if self.custom else "the condition failed"


def _pairs(changes: Mapping[str, Any] | None, clause: str) -> Iterable[tuple[str, Any]]:
    if changes is None:
        return ()
    if not isinstance(changes, Mapping):
        raise TypeError(f"update: {clause} takes a mapping of property names to values, not {type(changes).__name__}")
    return changes.items()


def _decimal(number: float) -> Decimal:
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def _number_text(number: Decimal) -> str:
    # Plain digits where they stay short (DynamoDB and people read "0.5" better than "5E-1").
    return format(number, "f") if -30 < number.adjusted() < 30 else str(number)
