"""What a persisted model can do: save, load, update, delete, query, scan, batches and transactions.

``attach`` gives a model class a :class:`Table` and the :class:`Persistent` methods.
Every call goes straight from the model's wire data to DynamoDB's JSON (see codec),
through pynamodb's connection: no intermediate objects, no ``Decimal``.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value

from macaron.errors import ModelValidationError
from macaron.models import Model, from_wire, model_info, model_name, to_wire, wire_data
from macaron_dynamodb.backend import Backend, Cancelled, ConditionFailed
from macaron_dynamodb.codec import AttributeValue, EncodeError, encode, encode_item, generic
from macaron_dynamodb.errors import DynamoDBUnavailable, InvalidCursor, ItemConflict, ItemExists, ItemNotFound, TransactionCancelled
from macaron_dynamodb.settings import TableSpec
from macaron_dynamodb.updates import Rules, UpdatePlan

M = TypeVar("M", bound="Persistent")
Key = Any  # a hash key value, or a (hash, range) tuple
METHODS = ("save", "delete", "load", "update", "query", "scan", "batch_get", "batch_write")
BATCH_GET_SIZE = 100
BATCH_WRITE_SIZE = 25
TRANSACTION_SIZE = 100
UNPROCESSED_ATTEMPTS = 8


class Attr(Path):
    """A property (or a path inside one) in a condition: ``Attr("status") == "paid"``, ``Attr("tags")[0]``.

    pynamodb's condition operators all work (``==``, ``<``, ``between``, ``is_in``,
    ``startswith``, ``contains``, ``exists``, ``does_not_exist``, ``&``, ``|``, ``~``);
    values are written as macaron writes the model (dates as ISO strings, models as maps).
    """

    def _to_value(self, value: Any) -> Value:
        return Value(encode(to_wire(value)))

    def __getitem__(self, item: int | str) -> Attr:
        return Attr(super().__getitem__(item).path)


class Expression:
    """Builds one request's expressions; names and values use pynamodb's placeholders (#0, :0...)."""

    __slots__ = ("names", "values")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}

    def add(self, condition: Condition | None, *mine: Condition) -> str | None:
        parts = [c for c in (condition, *mine) if c is not None]
        if not parts:
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part
        text: str = combined.serialize(self.names, self.values)  # type: ignore[arg-type]  # pynamodb's hint is too narrow
        return text

    def into(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            arguments["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in self.names.items()}
        if self.values:
            arguments["ExpressionAttributeValues"] = self.values
        return arguments


class Table:
    """A persisted model's table: its spec, its name in DynamoDB, its key codec and decoder."""

    def __init__(
        self,
        model: type[Model],
        spec: TableSpec,
        backend: Backend,
        decode_item: Callable[[dict[str, AttributeValue]], dict[str, Any]],
        definitions: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.spec = spec
        self.backend = backend
        self.name = backend.settings.table_prefix + spec.table
        self.decode_item = decode_item
        self.key_names = (spec.hash_key,) if spec.range_key is None else (spec.hash_key, spec.range_key)
        self.cursor_names: dict[str | None, frozenset[str]] = {None: frozenset(self.key_names)}
        for index in spec.indexes.values():
            names = {*self.key_names, index.hash_key, *([index.range_key] if index.range_key else [])}
            self.cursor_names[index.name] = frozenset(names)
        # The spec's definitions, where updates find each property's schema ($refs resolve among them).
        self.definitions: dict[str, dict[str, Any]] = definitions if definitions is not None else {model_name(model): model_info(model).schema}
        self._rules: dict[type[Model], Rules] = {}

    def __repr__(self) -> str:
        return f"Table({self.name!r}, model={model_name(self.model)})"

    # -- keys -------------------------------------------------------------------

    def key_value(self, attribute: str, value: Any) -> AttributeValue:
        kind = self.spec.key_types[attribute]
        wire = to_wire(value)
        if kind == "S" and type(wire) is str:
            return {"S": wire}
        if kind == "N" and type(wire) in (int, float):
            return encode(wire)
        expected = "a string" if kind == "S" else "a number"
        raise TypeError(f"{model_name(self.model)}: key '{attribute}' is {expected}, not {type(value).__name__} {value!r}")

    def key(self, key: Key) -> dict[str, AttributeValue]:
        """The DynamoDB key of a hash value or (hash, range) tuple."""
        if self.spec.range_key is None:
            if isinstance(key, tuple):
                if len(key) != 1:
                    raise TypeError(f"{model_name(self.model)} is keyed by '{self.spec.hash_key}' alone, got {key!r}")
                key = key[0]
            return {self.spec.hash_key: self.key_value(self.spec.hash_key, key)}
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError(f"{model_name(self.model)} is keyed by ('{self.spec.hash_key}', '{self.spec.range_key}'), got {key!r}")
        return {
            self.spec.hash_key: self.key_value(self.spec.hash_key, key[0]),
            self.spec.range_key: self.key_value(self.spec.range_key, key[1]),
        }

    def key_of(self, data: dict[str, Any]) -> dict[str, AttributeValue]:
        """The DynamoDB key of a model's data; a missing key property is the caller's error."""
        key: dict[str, AttributeValue] = {}
        for name in self.key_names:
            value = data.get(name)
            if value is None:
                raise ModelValidationError(model_name(self.model), [{"field": f"/{name}", "message": "is required: it is part of the key"}])
            key[name] = self.key_value(name, value)
        return key

    def describe_key(self, key: dict[str, AttributeValue]) -> str:
        return " ".join(f"{name}={generic(key[name])!r}" for name in self.key_names if name in key)

    # -- items ------------------------------------------------------------------

    def item_for_save(self, data: dict[str, Any], version: int | None, model: type[Model] | None = None) -> dict[str, AttributeValue]:
        """Validate and encode a model's data; ``version`` replaces the version property when given.

        ``model`` is the class of the instance saved: a subtype is checked as itself (a Cat
        relabelled "Dog" is refused, where the base would take it as a Dog).
        """
        model = model or self.model
        checked: dict[str, Any] = data if version is None else {**data, str(self.spec.version): version}
        model.check(checked)
        try:
            return encode_item(checked)
        except EncodeError as exc:
            raise ModelValidationError(model_name(model), [{"field": exc.path, "message": exc.message}]) from exc

    def wrap(self, item: dict[str, AttributeValue]) -> Any:
        return from_wire(self.model, self.decode_item(item))

    def rules(self, model: type[Model]) -> Rules:
        """What an update may change in the items of ``model`` (this table's model or one of its subtypes), read once."""
        rules = self._rules.get(model)
        if rules is None:
            rules = self._rules[model] = Rules(model, self, self.definitions)
        return rules

    def kind_filter(self, model: type[Model]) -> Condition | None:
        """For a subtype of the table's model, the condition keeping the items of its kind (its discriminator values)."""
        info = model_info(model)
        if model is self.model or info.discriminator is None:
            return None
        return Attr(info.discriminator).is_in(*info.subtypes)

    def not_found(self, model: type[Model], key: dict[str, AttributeValue], found: Any = None) -> ItemNotFound:
        other = f" (the item is a {model_name(found)})" if found is not None else ""
        return ItemNotFound(f"no {model_name(model)} with {self.describe_key(key)}{other}")

    # -- cursors ----------------------------------------------------------------

    def cursor(self, last_key: dict[str, AttributeValue] | None) -> str | None:
        if not last_key:
            return None
        text = json.dumps(last_key, separators=(",", ":"), sort_keys=True)
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def start_key(self, cursor: str | None, index: str | None) -> dict[str, AttributeValue] | None:
        if cursor is None:
            return None
        invalid = InvalidCursor(f"cursor '{cursor[:40]}' is not a cursor of this list: pass back the cursor of the previous page, unchanged")
        try:
            decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid from None
        if not isinstance(decoded, dict) or set(decoded) != self.cursor_names[index]:
            raise invalid
        for value in decoded.values():
            if not isinstance(value, dict) or len(value) != 1:
                raise invalid
            ((kind, text),) = value.items()
            if kind not in ("S", "N") or not isinstance(text, str):
                raise invalid
        return decoded


class Page(Generic[M]):
    """One page of a query or scan: ``items``, and ``cursor`` to ask for the next page (None on the last)."""

    def __init__(self, items: list[M], cursor: str | None, fetch: Callable[[str], Page[M]]) -> None:
        self.items = items
        self.cursor = cursor
        self._fetch = fetch

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> M:
        return self.items[index]

    def __repr__(self) -> str:
        return f"Page({len(self.items)} items, cursor={'yes' if self.cursor else 'none'})"

    def next_page(self) -> Page[M] | None:
        """The following page, or None after the last one."""
        return self._fetch(self.cursor) if self.cursor is not None else None

    def all(self) -> Iterator[M]:
        """Every item of this page and of the pages after it, fetched as the iteration reaches them."""
        page: Page[M] | None = self
        while page is not None:
            yield from page.items
            page = page.next_page()


if TYPE_CHECKING:
    _Base = Model  # what type checkers see: a persisted model is a Model with these methods
else:
    _Base = object  # at run time, a mixin inserted into the model class's bases


class Persistent(_Base):
    """The methods every persisted model gets; see docs/dynamodb.md."""

    __slots__ = ()
    _table: ClassVar[Table]
    _data: dict[str, Any]

    # -- one item ---------------------------------------------------------------

    def save(self: M, *, create: bool = False, condition: Condition | None = None) -> M:
        """Write the whole item.

        With a version property, the write only happens if the stored version is
        still the one this model was loaded with (else ItemConflict, 409), and the
        model's version goes up by one. ``create=True`` refuses to replace an
        existing item (ItemExists, 409). ``condition`` adds a condition of your own.
        """
        table = self._table
        data = wire_data(self)
        arguments, new_version = _put_request(table, data, create, condition, type(self))
        try:
            table.backend.call("PutItem", arguments)
        except ConditionFailed:
            raise _conflict(table, table.key_of(data), create, condition is not None, data) from None
        if new_version is not None:
            data[table.spec.version] = new_version  # type: ignore[index]
        return self

    def delete(self, *, condition: Condition | None = None) -> None:
        """Delete the item; with a version property, only if nobody changed it since it was loaded."""
        table = self._table
        data = wire_data(self)
        arguments, _ = _delete_request(table, data, condition)
        try:
            table.backend.call("DeleteItem", arguments)
        except ConditionFailed:
            raise _conflict(table, arguments["Key"], False, condition is not None, data, deleting=True) from None

    @classmethod
    def update(
        cls: type[M],
        hash_key: Any,
        range_key: Any = None,
        *,
        set: Mapping[str, Any] | None = None,  # the clause's name in DynamoDB's update expressions
        add: Mapping[str, int | float] | None = None,
        remove: Iterable[str] = (),
        append: Mapping[str, Iterable[Any]] | None = None,
        condition: Condition | None = None,
        create: bool = False,
    ) -> M:
        """Change some properties of the item with this key, atomically and without reading it; returns the item as updated.

        ``set`` gives properties new values (None removes a property that is not
        nullable, as assigning None does), ``add`` adds to numbers (a negative number
        subtracts), ``remove`` takes properties away, ``append`` adds items at the end of
        lists. Every value is checked against its property's schema first
        (ModelValidationError, 400); the version, if any, goes up by one. A missing item
        raises ItemNotFound (404) unless ``create=True``, which creates it (the update
        must then give every required property). ``condition`` adds a condition of your
        own; when it, or a ``minimum``/``maximum`` an ``add`` would cross, fails: ItemConflict (409).
        """
        table = cls._table
        key = table.key(hash_key if range_key is None else (hash_key, range_key))
        plan = UpdatePlan(table, cls, key, set, add, remove, append, condition, create)
        arguments = plan.arguments
        arguments["ReturnValues"] = "ALL_NEW"
        try:
            result = table.backend.call("UpdateItem", arguments)
        except ConditionFailed as exc:
            raise _update_failed(table, cls, key, plan, exc.item) from None
        updated: M = table.wrap(result["Attributes"])
        return updated

    @classmethod
    def load(cls: type[M], hash_key: Any, range_key: Any = None, *, consistent: bool = False) -> M:
        """The item with this key; raises ItemNotFound (404) when there is none."""
        table = cls._table
        key = table.key(hash_key if range_key is None else (hash_key, range_key))
        arguments: dict[str, Any] = {"TableName": table.name, "Key": key}
        if consistent:
            arguments["ConsistentRead"] = True
        item = table.backend.call("GetItem", arguments).get("Item")
        if item is None:
            raise table.not_found(cls, key)
        result: M = table.wrap(item)
        if not isinstance(result, cls):  # Cat.load of a key holding a Dog
            raise table.not_found(cls, key, result)
        return result

    # -- many items -------------------------------------------------------------

    @classmethod
    def query(
        cls: type[M],
        hash_key: Any,
        condition: Condition | None = None,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        reverse: bool = False,
        consistent: bool = False,
    ) -> Page[M]:
        """One page of the items whose hash key (the index's, with ``index``) is ``hash_key``.

        ``condition`` narrows on the range key (``Attr("date").between(a, b)``),
        ``filter`` on other properties after reading; ``limit`` caps the items read
        per page, so a filtered page may hold fewer; ``reverse`` sorts by range key
        descending. Pass a page's ``cursor`` back to get the next one.
        """
        table = cls._table
        hash_name = table.spec.hash_key if index is None else _index(table, index).hash_key
        expression = Expression()
        key_condition = expression.add(Path(hash_name) == table.key_value(hash_name, hash_key), *([condition] if condition is not None else []))
        arguments: dict[str, Any] = {"TableName": table.name, "KeyConditionExpression": key_condition}
        # DynamoDB refuses a query filter on the keys it queries: there, _page alone keeps the kind.
        keys = table.key_names if index is None else (hash_name, _index(table, index).range_key)
        kind = [] if getattr(cls, "_discriminator", None) in keys else _kind(table, cls)
        filter_text = expression.add(filter, *kind)
        if filter_text is not None:
            arguments["FilterExpression"] = filter_text
        if reverse:
            arguments["ScanIndexForward"] = False
        _paging(table, arguments, index, limit, cursor, consistent)
        expression.into(arguments)
        return _page(cls, "Query", arguments, index)

    @classmethod
    def scan(
        cls: type[M],
        *,
        filter: Condition | None = None,
        index: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        consistent: bool = False,
        segment: int | None = None,
        total_segments: int | None = None,
    ) -> Page[M]:
        """One page of every item of the table (or index), optionally filtered; ``segment``/``total_segments`` split a parallel scan."""
        table = cls._table
        if index is not None:
            _index(table, index)
        arguments: dict[str, Any] = {"TableName": table.name}
        expression = Expression()
        filter_text = expression.add(filter, *_kind(table, cls))
        if filter_text is not None:
            arguments["FilterExpression"] = filter_text
        if (segment is None) != (total_segments is None):
            raise TypeError("scan: give both segment and total_segments, or neither")
        if segment is not None:
            arguments["Segment"] = segment
            arguments["TotalSegments"] = total_segments
        _paging(table, arguments, index, limit, cursor, consistent)
        expression.into(arguments)
        return _page(cls, "Scan", arguments, index)

    @classmethod
    def batch_get(cls: type[M], keys: Iterable[Key], *, consistent: bool = False) -> list[M]:
        """The items of these keys (hash values, or (hash, range) tuples), in the keys' order; missing ones are left out."""
        table = cls._table
        encoded: dict[str, dict[str, AttributeValue]] = {}
        order: list[str] = []
        for key in keys:
            item_key = table.key(key)
            identity = _identity(item_key)
            order.append(identity)
            encoded.setdefault(identity, item_key)  # DynamoDB refuses a batch that names a key twice
        found: dict[str, M] = {}
        unique = list(encoded.values())
        for start in range(0, len(unique), BATCH_GET_SIZE):
            request: dict[str, Any] = {"Keys": unique[start : start + BATCH_GET_SIZE]}
            if consistent:
                request["ConsistentRead"] = True
            pending: dict[str, Any] = {table.name: request}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                result = table.backend.call("BatchGetItem", {"RequestItems": pending})
                for item in result.get("Responses", {}).get(table.name, []):
                    model = table.wrap(item)
                    if isinstance(model, cls):  # Cat.batch_get leaves the Dogs out, as missing items
                        found[_identity({name: item[name] for name in table.key_names})] = model
                pending = result.get("UnprocessedKeys") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise DynamoDBUnavailable(f"BatchGetItem on {table.name}: keys still unprocessed after {UNPROCESSED_ATTEMPTS} attempts")
        return [found[identity] for identity in order if identity in found]

    @classmethod
    def batch_write(cls, put: Iterable[Persistent] = (), delete: Iterable[Persistent | Key] = (), *, unchecked: bool = False) -> None:
        """Write and delete many items of this model, 25 per request; deletes take models or keys.

        Batches cannot carry conditions, so a model with a version property needs
        ``unchecked=True``: its version still goes up, but nothing checks it.
        """
        table = cls._table
        puts = list(put)
        for model in puts:
            if not isinstance(model, cls):
                raise TypeError(f"{model_name(cls)}.batch_write: cannot put a {type(model).__name__}")
        deletes: list[tuple[Table, dict[str, AttributeValue]]] = []
        for target in delete:
            if isinstance(target, Persistent):
                if not isinstance(target, cls):
                    raise TypeError(f"{model_name(cls)}.batch_write: cannot delete a {type(target).__name__}")
                deletes.append((table, table.key_of(wire_data(target))))
            else:
                deletes.append((table, table.key(target)))
        _batch_write(puts, deletes, unchecked)


def _index(table: Table, name: str) -> Any:
    index = table.spec.indexes.get(name)
    if index is None:
        known = ", ".join(sorted(table.spec.indexes)) or "none"
        raise ValueError(f"{model_name(table.model)} has no index '{name}' (its indexes: {known})")
    return index


def _kind(table: Table, model: type[Model]) -> list[Condition]:
    condition = table.kind_filter(model)
    return [] if condition is None else [condition]


def _paging(table: Table, arguments: dict[str, Any], index: str | None, limit: int | None, cursor: str | None, consistent: bool) -> None:
    if index is not None:
        if consistent and not table.spec.indexes[index].local:
            raise ValueError(f"{model_name(table.model)}: index '{index}' is global, and DynamoDB reads global indexes eventually consistent only")
        arguments["IndexName"] = index
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, not {limit!r}")
        arguments["Limit"] = limit
    start = table.start_key(cursor, index)
    if start is not None:
        arguments["ExclusiveStartKey"] = start
    if consistent:
        arguments["ConsistentRead"] = True


def _page(cls: type[M], operation: str, arguments: dict[str, Any], index: str | None) -> Page[M]:
    table = cls._table
    result = table.backend.call(operation, arguments)
    wrap = table.wrap
    items: list[M] = [wrap(item) for item in result.get("Items", ())]
    if cls is not table.model:  # a subtype's list: its kind only (the filter did it, unless it was on a key)
        items = [item for item in items if isinstance(item, cls)]

    def fetch(cursor: str) -> Page[M]:
        following = dict(arguments)
        following["ExclusiveStartKey"] = table.start_key(cursor, index)
        return _page(cls, operation, following, index)

    return Page(items, table.cursor(result.get("LastEvaluatedKey")), fetch)


def _identity(key: dict[str, AttributeValue]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _backoff(attempt: int) -> None:
    # Full jitter, capped: unprocessed items and conflicts are retried within about a second.
    time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))


def _version_check(table: Table, data: dict[str, Any]) -> tuple[Condition | None, int | None]:
    name = table.spec.version
    if name is None:
        return None, None
    current = data.get(name)
    if current is None:
        return Path(name).does_not_exist(), 1
    if type(current) is not int:
        raise ModelValidationError(model_name(table.model), [{"field": f"/{name}", "message": "is the version: an integer, set by save()"}])
    return Path(name) == {"N": str(current)}, current + 1


def _conditioned(request: dict[str, Any], condition: Condition | None, *mine: Condition | None) -> dict[str, Any]:
    expression = Expression()
    text = expression.add(condition, *(c for c in mine if c is not None))
    if text is not None:
        request["ConditionExpression"] = text
        expression.into(request)
    return request


def _put_request(table: Table, data: dict[str, Any], create: bool, condition: Condition | None, model: type[Model]) -> tuple[dict[str, Any], int | None]:
    """A PutItem (or transaction Put) of a model's data, and the version it will have once written."""
    table.key_of(data)  # a missing key is the caller's 400, even where the spec does not require it
    version_condition, new_version = _version_check(table, data)
    create_condition = Path(table.spec.hash_key).does_not_exist() if create else None
    request = {"TableName": table.name, "Item": table.item_for_save(data, new_version, model)}
    return _conditioned(request, condition, version_condition, create_condition), new_version


def _delete_request(table: Table, data: dict[str, Any], condition: Condition | None) -> tuple[dict[str, Any], bool]:
    """A DeleteItem (or transaction Delete) of a model, and whether it checks the version."""
    version = table.spec.version
    version_condition = Path(version) == encode(data[version]) if version is not None and data.get(version) is not None else None
    request = {"TableName": table.name, "Key": table.key_of(data)}
    return _conditioned(request, condition, version_condition), version_condition is not None


def _conflict(table: Table, key: dict[str, AttributeValue], create: bool, custom: bool, data: dict[str, Any], deleting: bool = False) -> ItemConflict:
    what = f"{model_name(table.model)} {table.describe_key(key)}"
    if create:
        return ItemExists(f"{what} already exists" + (" (or your condition failed)" if custom else ""))
    reasons = []
    version = table.spec.version
    if version is not None:
        current = data.get(version)
        if current is None and not deleting:
            reasons.append("it was created by someone else meanwhile")
        else:
            reasons.append(f"it was changed or deleted since it was loaded at version {current}")
    if custom:
        reasons.append("your condition failed")
    verb = "deleted" if deleting else "saved"
    return ItemConflict(f"{what} was not {verb}: {' or '.join(reasons) or 'the condition failed'}")


def _update_failed(table: Table, model: type[Model], key: dict[str, AttributeValue], plan: UpdatePlan, old: dict[str, AttributeValue] | None) -> ItemConflict | ItemNotFound:
    missing, why = plan.diagnose(old)
    if missing:
        return table.not_found(model, key, table.wrap(old) if old is not None else None)
    return ItemConflict(f"{model_name(model)} {table.describe_key(key)} was not updated: {why}")


def _batch_write(puts: Sequence[Persistent], deletes: Sequence[tuple[Table, dict[str, AttributeValue]]], unchecked: bool) -> None:
    requests: list[tuple[Backend, str, dict[str, Any]]] = []
    bumps: list[tuple[Persistent, int]] = []
    for model in puts:
        table = model._table
        new_version = None
        if table.spec.version is not None:
            if not unchecked:
                raise TypeError(
                    f"{model_name(table.model)} has a version property, and a batch write cannot check it: "
                    "use save() or a transaction, or batch_write(..., unchecked=True) to write without the check"
                )
            current = wire_data(model).get(table.spec.version)
            new_version = 1 if current is None else int(current) + 1
            bumps.append((model, new_version))
        requests.append((table.backend, table.name, {"PutRequest": {"Item": table.item_for_save(wire_data(model), new_version, type(model))}}))
    for table, key in deletes:
        requests.append((table.backend, table.name, {"DeleteRequest": {"Key": key}}))
    by_backend: dict[int, tuple[Backend, list[tuple[str, dict[str, Any]]]]] = {}
    for backend, name, request in requests:
        by_backend.setdefault(id(backend), (backend, []))[1].append((name, request))
    for backend, entries in by_backend.values():
        for start in range(0, len(entries), BATCH_WRITE_SIZE):
            pending: dict[str, list[dict[str, Any]]] = {}
            for name, request in entries[start : start + BATCH_WRITE_SIZE]:
                pending.setdefault(name, []).append(request)
            for attempt in range(UNPROCESSED_ATTEMPTS):
                result = backend.call("BatchWriteItem", {"RequestItems": pending})
                pending = result.get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise DynamoDBUnavailable(f"BatchWriteItem: items still unprocessed after {UNPROCESSED_ATTEMPTS} attempts")
    for model, version in bumps:
        wire_data(model)[model._table.spec.version] = version  # type: ignore[index]


def batch_write(put: Iterable[Persistent] = (), delete: Iterable[Persistent] = (), *, unchecked: bool = False) -> None:
    """Write and delete persisted models of any tables, 25 per request; see ``Model.batch_write``."""
    puts = list(put)
    for model in puts:
        if not isinstance(model, Persistent):
            raise TypeError(f"batch_write: a {type(model).__name__} is not a persisted model")
    deletes = []
    for model in delete:
        if not isinstance(model, Persistent):
            raise TypeError(f"batch_write: a {type(model).__name__} is not a persisted model")
        deletes.append((model._table, model._table.key_of(wire_data(model))))
    _batch_write(puts, deletes, unchecked)


# Per item of a transaction: its table, its key, and why its condition may fail (a reason, or the update that explains it).
Described = tuple[Table, dict[str, AttributeValue], "str | UpdatePlan"]


class Transaction:
    """Writes to several items, all or none: ``with transaction() as tx: tx.save(a); tx.update(B, key, add=...); tx.delete(c)``.

    Leaving the block commits (unless it raised); a cancelled transaction raises
    TransactionCancelled (409) whose ``reasons`` name the items that caused it.
    Versions are checked and increased as ``save`` does, and set on the models
    only once the transaction went through.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self._items: list[dict[str, Any]] = []
        self._described: list[Described] = []
        self._bumps: list[tuple[Persistent, int]] = []
        self._backend: Backend | None = None
        self._done = False

    def _add(self, table: Table, key: dict[str, AttributeValue], kind: str, operation: dict[str, Any], why: str | UpdatePlan) -> None:
        if self._done:
            raise RuntimeError("this transaction is already committed")
        if self._backend is None:
            self._backend = table.backend
        elif self._backend is not table.backend:
            raise ValueError("a transaction writes through one DynamoDB endpoint: these models are configured differently")
        identity = (table.name, _identity(key))
        for other_table, other_key, _ in self._described:
            if (other_table.name, _identity(other_key)) == identity:
                raise ValueError(f"{model_name(table.model)} {table.describe_key(key)} is already in this transaction (DynamoDB allows one action per item)")
        if len(self._items) >= TRANSACTION_SIZE:
            raise ValueError(f"a transaction holds at most {TRANSACTION_SIZE} items")
        self._items.append({kind: operation})
        self._described.append((table, key, why))

    def save(self, model: Persistent, *, create: bool = False, condition: Condition | None = None) -> None:
        table = model._table
        operation, new_version = _put_request(table, wire_data(model), create, condition, type(model))
        why = "already exists" if create else "changed since it was loaded" if new_version is not None else "condition failed"
        self._add(table, table.key_of(wire_data(model)), "Put", operation, why)
        if new_version is not None:
            self._bumps.append((model, new_version))

    def delete(self, model: Persistent, *, condition: Condition | None = None) -> None:
        table = model._table
        operation, versioned = _delete_request(table, wire_data(model), condition)
        self._add(table, operation["Key"], "Delete", operation, "changed since it was loaded" if versioned else "condition failed")

    def update(
        self,
        model: type[Persistent],
        key: Key,
        *,
        set: Mapping[str, Any] | None = None,
        add: Mapping[str, int | float] | None = None,
        remove: Iterable[str] = (),
        append: Mapping[str, Iterable[Any]] | None = None,
        condition: Condition | None = None,
        create: bool = False,
    ) -> None:
        """An update of the item with this key (a hash value or a (hash, range) tuple), checked as ``Model.update`` checks it.

        DynamoDB returns nothing from a transaction: load the item afterwards to see it.
        """
        if not (isinstance(model, type) and issubclass(model, Persistent)):
            raise TypeError(f"transaction update: give the model class and the key, not a {type(model).__name__}")
        table = model._table
        item_key = table.key(key)
        plan = UpdatePlan(table, model, item_key, set, add, remove, append, condition, create)
        self._add(table, item_key, "Update", plan.arguments, plan)

    def check(self, model: Persistent | type[Persistent], condition: Condition, key: Key = None) -> None:
        """Make the transaction depend on a condition of an item it does not write (a model, or a model class and a key)."""
        if isinstance(model, Persistent):
            table = model._table
            item_key = table.key_of(wire_data(model))
        else:
            table = model._table
            item_key = table.key(key)
        operation = _conditioned({"TableName": table.name, "Key": item_key}, condition)
        self._add(table, item_key, "ConditionCheck", operation, "condition failed")

    def commit(self) -> None:
        if self._done:
            raise RuntimeError("this transaction is already committed")
        self._done = True
        if not self._items:
            return
        assert self._backend is not None
        arguments: dict[str, Any] = {"TransactItems": self._items}
        if self.token is not None:
            arguments["ClientRequestToken"] = self.token
        try:
            self._backend.call("TransactWriteItems", arguments)
        except Cancelled as exc:
            raise _cancellation(self._described, exc, "transaction cancelled, nothing was written") from None
        for model, version in self._bumps:
            wire_data(model)[model._table.spec.version] = version  # type: ignore[index]

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is None and not self._done:
            self.commit()


def _cancellation(described: list[Described], cancelled: Cancelled, headline: str) -> TransactionCancelled:
    reasons: list[dict[str, Any]] = []
    words: list[str] = []
    for position, reason in enumerate(cancelled.reasons):
        if reason is None or reason[0] in ("None", ""):
            continue
        code, message = reason
        table, key, why = described[position] if position < len(described) else (None, {}, "")
        if isinstance(why, UpdatePlan):  # the item as it was says which of the update's conditions failed
            old = cancelled.items[position] if position < len(cancelled.items) else None
            why = why.diagnose(old)[1]
        name = model_name(table.model) if table is not None else "?"
        where = table.describe_key(key) if table is not None else ""
        reasons.append({"index": position, "model": name, "key": {k: generic(v) for k, v in key.items()}, "code": code, "message": message})
        detail = f" ({why})" if code == "ConditionalCheckFailed" else f" ({message})" if message else ""
        words.append(f"item {position} ({name} {where}): {code}{detail}")
    summary = "; ".join(words) or "no reason given"
    return TransactionCancelled(f"{headline}: {summary}", reasons)


def transaction(token: str | None = None) -> Transaction:
    """A transaction of writes to persisted models; ``token`` makes a retried commit idempotent (ClientRequestToken)."""
    return Transaction(token)


def transaction_get(keys: Iterable[tuple[type[Persistent], Key]]) -> list[Any]:
    """Several items, of one model or several, read at one instant (TransactGetItems): ``[(Account, "a"), (Order, ("c1", "o1"))]``.

    Returns a model per key, in the keys' order, and None where no item has the key
    (or, through a subtype, where the item is of another kind). A key given twice
    gets the same model. At most 100 different items. When a concurrent write
    transaction holds one of them, DynamoDB cancels the read: TransactionCancelled (409).
    """
    requests: list[dict[str, Any]] = []
    described: list[Described] = []
    positions: list[tuple[type[Persistent], int]] = []
    seen: dict[tuple[str, str], int] = {}
    backend: Backend | None = None
    for entry in keys:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], type) and issubclass(entry[0], Persistent)):
            raise TypeError(f"transaction_get takes (model class, key) pairs, like [(Account, 'a'), (Order, ('c1', 'o1'))], not {entry!r}")
        model, key = entry
        table = model._table
        item_key = table.key(key)
        if backend is None:
            backend = table.backend
        elif backend is not table.backend:
            raise ValueError("a transaction reads through one DynamoDB endpoint: these models are configured differently")
        identity = (table.name, _identity(item_key))
        index = seen.get(identity)
        if index is None:  # DynamoDB refuses a transaction that names an item twice
            index = seen[identity] = len(requests)
            requests.append({"Get": {"TableName": table.name, "Key": item_key}})
            described.append((table, item_key, "condition failed"))
        positions.append((model, index))
    if len(requests) > TRANSACTION_SIZE:
        raise ValueError(f"a transaction holds at most {TRANSACTION_SIZE} items, not {len(requests)}")
    if backend is None:
        return []
    try:
        result = backend.call("TransactGetItems", {"TransactItems": requests})
    except Cancelled as exc:
        raise _cancellation(described, exc, "transactional read cancelled") from None
    responses = result.get("Responses") or []
    found: list[Any] = []
    for position, (table, _, _) in enumerate(described):
        item = responses[position].get("Item") if position < len(responses) else None
        found.append(table.wrap(item) if item else None)
    return [found[index] if isinstance(found[index], model) else None for model, index in positions]


def modify(model: type[M], key: Key, change: Callable[[M], Any], *, attempts: int = 10, create: Callable[[], M] | None = None) -> M:
    """Load, change and save an item, again and again until nobody else changed it in between.

    The model needs a version property. ``create`` builds the item when it does not
    exist yet (else ItemNotFound). After ``attempts`` conflicts in a row, the last
    ItemConflict is raised.
    """
    table = model._table
    if table.spec.version is None:
        raise TypeError(f"{model_name(table.model)} has no version property: without one, modify() cannot see a lost update")
    key_tuple = key if isinstance(key, tuple) else (key,)
    last: ItemConflict | None = None
    for attempt in range(attempts):
        try:
            item = model.load(*key_tuple, consistent=True)
        except ItemNotFound:
            if create is None:
                raise
            item = create()
        change(item)
        try:
            return item.save()
        except ItemConflict as exc:
            last = exc
            _backoff(attempt)
    assert last is not None
    raise last


def persisted(model: type[Model]) -> type[Persistent]:
    """``model`` as a persisted model class, for type checkers: ``Item = persisted(apis.shop.Item)``."""
    if not issubclass(model, Persistent):
        raise TypeError(f"{model_name(model)} is not persisted: mark its definition with x-persist (and install macaron-dynamodb)")
    return model


def attach(model: type[Model], table: Table) -> None:
    """Make ``model`` persisted: its class gains Persistent's methods and ``_table``."""
    if not issubclass(model, Persistent):
        # Just before Model, so an x-parent class can override save() and call super().save().
        bases = list(model.__bases__)
        bases.insert(bases.index(Model) if Model in bases else 0, Persistent)
        model.__bases__ = tuple(bases)
    model._table = table  # type: ignore[attr-defined]
