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
(ReturnValuesOnConditionCheckFailure), and ``UpdatePlan.diagnose`` says which part failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeGuard

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path

from macaron.errors import ModelValidationError
from macaron.models import Model, PolymorphicModel, model_info, model_name, to_wire
from macaron.spec import DISPATCH
from macaron.validation import Checker, escape
from macaron_dynamodb.codec import REF_PREFIX, AttributeValue, DecoderFactory, EncodeError, encode

if TYPE_CHECKING:
    from macaron_dynamodb.persistence import Table

Problems = list[dict[str, str]]
# Limits and deltas are added exactly: DynamoDB numbers have 38 digits, the default context rounds at 28.
EXACT = Context(prec=80)
ONE: AttributeValue = {"N": "1"}
EMPTY_LIST: AttributeValue = {"L": []}


class Writer:
    """Placeholders of one request's expressions, shared with the conditions pynamodb serialises (same scheme: #0, :0...)."""

    __slots__ = ("names", "values")

    def __init__(self, names: dict[str, str], values: dict[str, AttributeValue]) -> None:
        self.names = names
        self.values = values

    def name(self, prop: str) -> str:
        placeholder = self.names.get(prop)
        if placeholder is None:
            placeholder = self.names[prop] = f"#{len(self.names)}"
        return placeholder

    def value(self, attribute: AttributeValue) -> str:
        placeholder = f":{len(self.values)}"
        self.values[placeholder] = attribute
        return placeholder


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
            return EXACT.add(Decimal(old["N"]), self.delta)
        except (KeyError, InvalidOperation):
            return self.delta

    def condition(self, writer: Writer) -> str | None:
        """The condition keeping the stored value within the bound, or None when no valid stored value could cross it."""
        if not self.size and ((self.lower and self.delta >= 0) or (not self.lower and self.delta <= 0)):
            return None  # moving away from the limit: a valid stored value stays valid
        name = writer.name(self.prop)
        # value + delta (or size + n) within the limit  <=>  value within (limit - delta)
        threshold = writer.value({"N": _number_text(EXACT.subtract(self.limit, self.delta))})
        operator = (">" if self.exclusive else ">=") if self.lower else ("<" if self.exclusive else "<=")
        within = f"size ({name}) {operator} {threshold}" if self.size else f"{name} {operator} {threshold}"
        # A missing attribute counts as 0 (or []): allowed only when the change alone fits. The
        # existence test comes first: moto's server fails on size() of a missing attribute otherwise.
        return f"(attribute_not_exists ({name}) OR {within})" if self.holds(None) else within

    def describe(self, old: AttributeValue | None) -> str:
        if self.size:
            return f"{self.prop} would hold {self.result(old)} items, more than its maxItems {self.limit}"
        keyword = ("exclusiveMinimum" if self.exclusive else "minimum") if self.lower else ("exclusiveMaximum" if self.exclusive else "maximum")
        return f"{self.prop} would become {_number_text(self.result(old))}, beyond its {keyword} {_number_text(self.limit)}"


class NumberRule:
    """What ``add`` needs to know of a number property, read once: integer or not, multipleOf, its limits."""

    __slots__ = ("integer", "limits", "step")

    def __init__(self, schema: dict[str, Any], kinds: set[str]) -> None:
        self.integer = "number" not in kinds
        step = schema.get("multipleOf")
        self.step = _decimal(step) if _is_number(step) and step > 0 else None
        self.limits: list[tuple[bool, Decimal, bool]] = []  # (lower, limit, exclusive)
        for lower, keyword, flag in ((True, "minimum", "exclusiveMinimum"), (False, "maximum", "exclusiveMaximum")):
            limit, exclusive = schema.get(keyword), schema.get(flag)
            if _is_number(exclusive):  # JSON Schema 2020-12: the exclusive bound itself
                self.limits.append((lower, _decimal(exclusive), True))
            if _is_number(limit):  # draft 4: exclusiveMinimum/Maximum is a flag on minimum/maximum
                self.limits.append((lower, _decimal(limit), exclusive is True))


class ListRule:
    """What ``append`` needs to know of a list property, read once."""

    __slots__ = ("items", "most")

    def __init__(self, schema: dict[str, Any], items: Checker) -> None:
        most = schema.get("maxItems")
        self.most: int | None = most if isinstance(most, int) and not isinstance(most, bool) else None
        self.items = items


class Rules:
    """What an update may do to the items of one model class, read from its definition once, on its first update."""

    def __init__(self, model: type[Model], table: Table, definitions: dict[str, dict[str, Any]]) -> None:
        self.model = model
        self.name = model_name(model)
        # Kept as given: the Api's definitions object also says the dialect its schemas compile in.
        self.definitions = definitions
        schema = definitions.get(model_name(model)) or model_info(model).schema
        self.properties = DecoderFactory(definitions).properties(schema)
        self.required = frozenset(self._required(schema, frozenset()))
        spec = table.spec
        self.fixed: dict[str, str] = {name: "is part of the key: an update cannot change it (save the item under its new key, delete the old one)" for name in table.key_names}
        if spec.version is not None:
            self.fixed[spec.version] = "is the version: every update adds one to it"
        self.kept: dict[str, str] = {}  # properties that cannot be removed, and why (besides the required ones)
        self.discriminator: str | None = None
        self.own_value: str | None = None
        info = model_info(model)
        if info.discriminator is not None:
            self.discriminator = info.discriminator
            self.own_value = info.own_value
            self.fixed[info.discriminator] = "is the discriminator: an update cannot change an item's kind (save it as its new kind)"
            self._subtype_rules(model)
        self._checkers: dict[str, Checker] = {}
        self._numbers: dict[str, NumberRule | str] = {}
        self._lists: dict[str, ListRule | str] = {}

    def _subtype_rules(self, model: type[Model]) -> None:
        """Through a base, the item may be any of its subtypes: a property a subtype redeclares or requires is refused.

        The update is checked before the item's kind is known, against this class's
        schemas; where a subtype says more about a property, only an update through
        that subtype can honour it.
        """
        factory = DecoderFactory(self.definitions)
        for sub in dict.fromkeys(model_info(model).subtypes.values()):
            if sub is model:
                continue
            schema = self.definitions.get(model_name(sub)) or model_info(sub).schema
            theirs = factory.properties(schema)
            for prop, mine in self.properties.items():
                if prop in self.fixed:
                    continue
                if prop in theirs and theirs[prop] != mine:
                    self.fixed.setdefault(prop, f"is declared differently by {model_name(sub)}: update it through {model_name(sub)}, whose schema then applies")
                elif prop not in self.required and prop in self._required(schema, frozenset()):
                    self.kept.setdefault(prop, f"is required by {model_name(sub)}, which the item may be: remove it through the item's own kind")

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
        for _ in range(32):  # bounded: a $ref cycle is no number or list anyway
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

    def kinds(self, schema: dict[str, Any]) -> set[str]:
        types = schema.get("type")
        if isinstance(types, list):
            return {str(t) for t in types if t != "null"}
        if isinstance(types, str):
            return {types}
        if "properties" in schema or "allOf" in schema or DISPATCH in schema:
            return {"object"}
        return set()

    def checker(self, prop: str) -> Checker:
        checker = self._checkers.get(prop)
        if checker is None:
            checker = self._checkers[prop] = Checker(self.properties[prop], self.definitions, prefix="/" + escape(prop))
        return checker

    def number(self, prop: str) -> NumberRule | str:
        """The number rule of ``prop``, or why ``add`` cannot change it."""
        rule = self._numbers.get(prop)
        if rule is None:
            schema = self.resolve(self.properties[prop])
            kinds = self.kinds(schema)
            if kinds & {"integer", "number"}:
                rule = NumberRule(schema, kinds)
            else:
                rule = f"is {'/'.join(sorted(kinds)) or 'untyped'}: add takes number properties only"
            self._numbers[prop] = rule
        return rule

    def list(self, prop: str) -> ListRule | str:
        """The list rule of ``prop``, or why ``append`` cannot change it."""
        rule = self._lists.get(prop)
        if rule is None:
            schema = self.resolve(self.properties[prop])
            kinds = self.kinds(schema)
            if "array" not in kinds:
                rule = f"is {'/'.join(sorted(kinds)) or 'untyped'}: append takes list properties only"
            elif schema.get("uniqueItems") is True:
                rule = "has uniqueItems, which no update expression can check: save the item (or use modify()) instead"
            else:
                items = schema.get("items")
                rule = ListRule(schema, Checker(items if isinstance(items, dict) else {}, self.definitions, prefix=f"/{escape(prop)}/-"))
            self._lists[prop] = rule
        return rule

    def unknown(self, prop: str) -> dict[str, str]:
        known = ", ".join(sorted(self.properties)) or "none"
        return {"field": "/" + escape(prop), "message": f"is not a property of {self.name} (its properties: {known})"}


class UpdatePlan:
    """One update, checked and turned into UpdateItem's arguments; ``diagnose`` explains a failed condition."""

    __slots__ = ("arguments", "bounds", "create", "custom", "kind_values", "problems", "rules", "writer")

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
        self.rules = rules = table.rules(model)
        self.create = create
        self.custom = condition is not None
        self.bounds: list[Bound] = []
        self.kind_values: tuple[str, ...] = ()
        self.problems: Problems = []
        self.writer = writer = Writer({}, {})
        sets: list[str] = []
        adds: list[str] = []
        removes: list[str] = []
        changed: dict[str, str] = {}  # property -> the clause that changes it
        provided: set[str] = set(table.key_names)
        attributes = model_info(rules.model).attributes

        def accept(name: Any, clause: str) -> str | None:
            prop = attributes.get(name, name) if isinstance(name, str) else name
            if not isinstance(prop, str) or prop not in rules.properties:
                self.problems.append(rules.unknown(str(prop)))
                return None
            if prop in rules.fixed:
                self.problems.append({"field": "/" + escape(prop), "message": rules.fixed[prop]})
                return None
            if prop in changed:
                self.problems.append({"field": "/" + escape(prop), "message": f"is changed twice (in {changed[prop]} and {clause}): one change per property"})
                return None
            changed[prop] = clause
            return prop

        removals: list[str] = []
        for name, value in _pairs(set_, "set"):
            prop = accept(name, "set")
            if prop is None:
                continue
            if value is None and prop not in model_info(rules.model).nullable:
                removals.append(prop)  # as `model.prop = None` does: the property goes away
                continue
            wire = to_wire(value)
            found = rules.checker(prop).problems(wire)
            if found:
                self.problems.extend(found)
                continue
            attribute = self._encode(wire, "/" + escape(prop))
            if attribute is not None:
                sets.append(f"{writer.name(prop)} = {writer.value(attribute)}")
                if value is not None:
                    provided.add(prop)

        for name, value in _pairs(add, "add"):
            prop = accept(name, "add")
            if prop is not None:
                delta = self._number(prop, value)
                if delta is not None:
                    adds.append(f"{writer.name(prop)} {writer.value(delta)}")
                    provided.add(prop)

        for name, values in _pairs(append, "append"):
            prop = accept(name, "append")
            if prop is not None:
                items = self._items(prop, values)
                if items is not None:
                    path = writer.name(prop)
                    sets.append(f"{path} = list_append (if_not_exists ({path}, {writer.value(EMPTY_LIST)}), {writer.value(items)})")
                    provided.add(prop)

        for name in [remove] if isinstance(remove, str) else remove or ():
            prop = accept(name, "remove")
            if prop is not None:
                removals.append(prop)
        for prop in removals:
            if prop in rules.required:
                self.problems.append({"field": "/" + escape(prop), "message": f"is required by {rules.name}: an update cannot remove it"})
            elif prop in rules.kept:
                self.problems.append({"field": "/" + escape(prop), "message": rules.kept[prop]})
            else:
                removes.append(writer.name(prop))

        version = table.spec.version
        if version is not None:
            adds.append(f"{writer.name(version)} {writer.value(ONE)}")  # a missing version (a new item) becomes 1, as save() starts it
            provided.add(version)
        mine: list[str] = []
        kind = table.kind_filter(model)
        if create:
            if rules.discriminator is not None and rules.own_value is not None:
                # A created item is of the class updated: Cat.update(..., create=True) makes a Cat.
                tag = writer.name(rules.discriminator)
                sets.append(f"{tag} = if_not_exists ({tag}, {writer.value({'S': rules.own_value})})")
                provided.add(rules.discriminator)
            self.problems.extend(
                {"field": "/" + escape(prop), "message": "is required: with create=True the update may create the item, so it must set this property"}
                for prop in sorted(rules.required - provided)
            )
            if kind is not None:
                kind = Path([table.spec.hash_key]).does_not_exist() | kind
        else:
            mine.append(f"attribute_exists ({writer.name(table.spec.hash_key)})")
        if not changed and not self.problems:
            raise TypeError(f"{rules.name}.update: nothing to change (give set, add, remove or append)")
        if self.problems:
            raise ModelValidationError(rules.name, self.problems)

        if kind is not None and issubclass(model, PolymorphicModel):
            self.kind_values = tuple(model_info(model).subtypes)
            mine.append(kind.serialize(writer.names, writer.values))  # type: ignore[arg-type]  # pynamodb's hint is too narrow
        if condition is not None:
            mine.append(condition.serialize(writer.names, writer.values))  # type: ignore[arg-type]
        for bound in self.bounds:
            text = bound.condition(writer)
            if text is not None:
                mine.append(text)
        clauses = [f"SET {', '.join(sets)}" if sets else "", f"REMOVE {', '.join(removes)}" if removes else "", f"ADD {', '.join(adds)}" if adds else ""]
        arguments: dict[str, Any] = {"TableName": table.name, "Key": key, "UpdateExpression": " ".join(c for c in clauses if c)}
        if mine:
            # Every part is a comparison or a parenthesised AND/OR (pynamodb's too): no parentheses to add, and
            # DynamoDB refuses redundant ones.
            arguments["ConditionExpression"] = " AND ".join(mine)
            # On failure DynamoDB returns the item as it was: diagnose() reads it, without a second call.
            arguments["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        arguments["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in writer.names.items()}
        if writer.values:
            arguments["ExpressionAttributeValues"] = writer.values
        self.arguments = arguments

    def _encode(self, value: Any, path: str) -> AttributeValue | None:
        try:
            return encode(value, path)
        except EncodeError as exc:
            self.problems.append({"field": exc.path, "message": exc.message})
            return None

    def _number(self, prop: str, value: Any) -> AttributeValue | None:
        """The attribute value of a number to add to ``prop``, its limits noted as bounds; None after a problem."""
        field = "/" + escape(prop)
        rule = self.rules.number(prop)
        if isinstance(rule, str):
            self.problems.append({"field": field, "message": rule})
            return None
        kind = type(value)
        if kind is not int and kind is not float:
            if kind is bool or not isinstance(value, (int, float)):
                self.problems.append({"field": field, "message": f"add takes a number, not {kind.__name__} {value!r}"})
                return None
            value = float(value) if isinstance(value, float) else int(value)
        if type(value) is float and rule.integer:
            if not value.is_integer():
                self.problems.append({"field": field, "message": f"is an integer: add {value!r} would make it a fraction"})
                return None
            value = int(value)
        attribute = self._encode(value, field)
        if attribute is None or (rule.step is None and not rule.limits):
            return attribute
        delta = Decimal(attribute["N"])
        if rule.step is not None and EXACT.remainder(delta, rule.step) != 0:
            self.problems.append({"field": field, "message": f"is a multiple of {_number_text(rule.step)}: adding {value!r} would break it"})
            return None
        self.bounds.extend(Bound(prop, limit, lower, exclusive, delta) for lower, limit, exclusive in rule.limits)
        return attribute

    def _items(self, prop: str, values: Any) -> AttributeValue | None:
        """The attribute value of the items to append to ``prop``, its maxItems noted as a bound; None after a problem."""
        field = "/" + escape(prop)
        rule = self.rules.list(prop)
        if isinstance(rule, str):
            self.problems.append({"field": field, "message": rule})
            return None
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            self.problems.append({"field": field, "message": f"append takes a list of the items to add, not {type(values).__name__}"})
            return None
        wire = [to_wire(value) for value in values]
        found = [problem for item in wire for problem in rule.items.problems(item)]
        if found:
            self.problems.extend(found)
            return None
        if rule.most is not None:
            if len(wire) > rule.most:
                self.problems.append({"field": field, "message": f"holds at most {rule.most} items: {len(wire)} cannot be appended"})
                return None
            self.bounds.append(Bound(prop, Decimal(rule.most), False, False, Decimal(len(wire)), size=True))
        return self._encode(wire, field)

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


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _decimal(number: float) -> Decimal:
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def _number_text(number: Decimal) -> str:
    # Plain digits where they stay short (DynamoDB and people read "0.5" better than "5E-1").
    return format(number, "f") if -30 < number.adjusted() < 30 else str(number)
