"""readOnly and writeOnly: the request and response variants of an Api's definitions, made once at start-up."""

from __future__ import annotations

from typing import Any, ClassVar

from macaron.validation import HIDDEN, REF_PREFIX, closure_of

# -- readOnly and writeOnly: what requests and responses may carry ---------------------------

READ_ONLY_SETTING = "read_only_in_requests"
READ_ONLY_MODES = ("reject", "accept")
# (keyword hidden, whether it is refused or only not required) -> suffix of the variant definitions
VARIANTS = {("readOnly", True): ":request", ("readOnly", False): ":request+ro", ("writeOnly", True): ":response"}
VARIANT_SUFFIXES = tuple(VARIANTS.values())
# Left as written: subschemas that test a value (changing them would change what they test), and values.
_NOT_TRANSFORMED = frozenset({"not", "if", "contains", "propertyNames", "enum", "const", "default", "example", "examples"})


def read_only_setting(config: Any) -> str:
    """How readOnly properties sent in a request are treated: ``reject`` (a 400 naming them, the default) or ``accept``."""
    value = config.get(READ_ONLY_SETTING, "reject") if config is not None else "reject"
    if value not in READ_ONLY_MODES:
        from macaron.config import ConfigError

        where = config.where() if hasattr(config, "where") else "the configuration"
        raise ConfigError(f"{where}: '{READ_ONLY_SETTING}' must be 'reject' or 'accept', not {value!r}")
    return str(value)


def request_variant(schema: dict[str, Any], definitions: dict[str, Any], accept_read_only: bool = False) -> dict[str, Any]:
    """``schema`` as a request must meet it: readOnly properties refused (or accepted), and never required."""
    return _Variants.of(definitions, "readOnly", not accept_read_only).schema(schema)


def response_variant(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a response must meet it: writeOnly properties refused, and never required."""
    return _Variants.of(definitions, "writeOnly", True).schema(schema)


class _Variants:
    """The definitions of an Api as one direction sees them, made once, where a property is readOnly or writeOnly.

    OpenAPI: a readOnly property is only in responses, a writeOnly one only in
    requests; listed in ``required``, it is required in that direction only. So a
    definition that has such a property, or reaches one through its references, gets
    a variant (``Pet:request``, ``Pet:response``) where it is refused (``not: {}``,
    marked for the message) or merely optional, and references to it lead there. A
    schema that reaches none comes back as it is: an API without these keywords
    compiles exactly what it did.
    """

    _made: ClassVar[dict[tuple[int, str, bool], tuple[dict[str, Any], _Variants]]] = {}

    @classmethod
    def of(cls, definitions: dict[str, Any], keyword: str, refuse: bool) -> _Variants:
        key = (id(definitions), keyword, refuse)
        entry = cls._made.get(key)
        if entry is None or entry[0] is not definitions:
            entry = cls._made[key] = (definitions, cls(definitions, keyword, refuse))
        return entry[1]

    def __init__(self, definitions: dict[str, Any], keyword: str, refuse: bool) -> None:
        self.definitions = definitions
        self.keyword = keyword
        self.refuse = refuse
        self.suffix = VARIANTS[(keyword, refuse)]
        originals = [name for name in definitions if not name.endswith(VARIANT_SUFFIXES)]
        direct = {name for name in originals if self._has_hidden(definitions[name])}
        self.affected = {name for name in originals if direct & closure_of(name, definitions)} if direct else set()

    def schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        if not self.affected and not self._has_hidden(schema):
            return schema
        transformed: dict[str, Any] = self._transform(schema, frozenset())
        return transformed

    def _hidden(self, schema: Any) -> bool:
        """Whether a property's schema is marked with the keyword (on it, or on the definition it names)."""
        seen: set[str] = set()
        while isinstance(schema, dict):
            if schema.get(self.keyword) is True:
                return True
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                branches = [b for b in schema.get("anyOf") or schema.get("allOf") or () if b != {"type": "null"}]
                if len(branches) != 1 or "properties" in schema:
                    return False
                schema = branches[0]
                continue
            if ref in seen:
                return False
            seen.add(ref)
            schema = self.definitions.get(ref[len(REF_PREFIX) :])
        return False

    def _has_hidden(self, schema: Any) -> bool:
        """Whether a hidden property is anywhere in the schema itself (its references not followed)."""
        if isinstance(schema, list):
            return any(self._has_hidden(item) for item in schema)
        if not isinstance(schema, dict):
            return False
        if isinstance(schema.get("properties"), dict) and any(self._hidden(sub) for sub in schema["properties"].values()):
            return True
        return any(self._has_hidden(value) for key, value in schema.items() if key not in _NOT_TRANSFORMED and not key.startswith("x-") and isinstance(value, (dict, list)))

    def _family_hidden(self, schema: Any, seen: frozenset[str]) -> set[str]:
        """The hidden properties of an object: its own and its allOf parts' (through their references)."""
        if not isinstance(schema, dict):
            return set()
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref[len(REF_PREFIX) :]
            return set() if name in seen else self._family_hidden(self.definitions.get(name), seen | {name})
        found = {prop for prop, sub in (schema.get("properties") or {}).items() if self._hidden(sub)}
        for part in schema.get("allOf", ()):
            found |= self._family_hidden(part, seen)
        return found

    def _reference(self, ref: str) -> str:
        name = ref[len(REF_PREFIX) :]
        if name not in self.affected:
            return ref
        variant = name + self.suffix
        if variant not in self.definitions:
            self.definitions[variant] = {}  # named before it is made: a recursive definition refers to itself
            source = {key: value for key, value in self.definitions[name].items() if key not in ("x-parent", "x-persist")}
            self.definitions[variant] = self._transform(source, frozenset())
        return REF_PREFIX + variant

    def _transform(self, node: Any, inherited: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [self._transform(item, frozenset()) for item in node]
        if not isinstance(node, dict):
            return node
        hidden = inherited | self._family_hidden(node, frozenset())
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = self._reference(value)
            elif key == "properties" and isinstance(value, dict):
                out[key] = {prop: self._property(sub) for prop, sub in value.items()}
            elif key == "required" and isinstance(value, list):
                out[key] = [prop for prop in value if prop not in hidden]
            elif key == "allOf" and isinstance(value, list):
                out[key] = [self._transform(part, hidden) for part in value]  # a part's required may name its siblings' properties
            elif key in _NOT_TRANSFORMED or key.startswith("x-") or not isinstance(value, (dict, list)):
                out[key] = value
            elif key in ("patternProperties", "dependentSchemas") and isinstance(value, dict):
                out[key] = {name: self._transform(sub, frozenset()) for name, sub in value.items()}
            else:
                out[key] = self._transform(value, frozenset())
        if "required" in out and not out["required"]:
            del out["required"]  # draft 4 wants a non-empty list
        return out

    def _property(self, schema: Any) -> Any:
        if self.refuse and self._hidden(schema):
            return {"not": {}, HIDDEN: self.keyword}
        return self._transform(schema, frozenset())


