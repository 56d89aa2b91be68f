"""``macaron migrate``: move a PyMacaron (1.x or 2.x) service to macaron.

Code is rewritten with libcst (imported lazily, so the rest of the CLI stays light) so comments and formatting
survive. What cannot be converted mechanically is reported with file, line and the section of docs/migrating.md to
read; nothing that was not converted is deleted. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from macaron.migrate_tests import AUTH_VERSION, TARGET_ATTRIBUTES, TESTCASE_BASES, NotMechanical
from macaron.migrate_tests import convert as convert_assertion
from macaron.migrate_yaml import review_config, rewrite_spec

DOC = "docs/migrating.md"

# PyMacaron module -> macaron module, for `from X import ...` and `import X`.
MODULES = {
    "pymacaron.auth": "macaron.auth",
    "pymacaron.exceptions": "macaron.errors",
    "pymacaron.config": "macaron.config",
    "pymacaron.log": "macaron.log",
    "pymacaron.crash": "macaron.reporting",
    "pymacaron.model": "macaron",
    "pymacaron.models": "macaron",
    "pymacaron_async": "macaron_async",
    "pymacaron_dynamodb": "macaron_dynamodb",
}
# Names that changed as well as their module.
NAMES = {"PyMacaronException": "MacaronException", "PymacaronBaseModel": "Model", "DynamoDBItemNotFound": "ItemNotFound"}
# A name that goes to another macaron module than the rest of its PyMacaron module.
NAME_MODULES = {("pymacaron.exceptions", "report_error"): "macaron.reporting"}
# pymacaron-dynamodb's persistence base class: macaron reads the class's attributes, it needs no base.
DROPPED_BASES = {"PersistentSwaggerObject"}
# PyMacaron's persistence methods on models -> macaron-dynamodb's.
PERSISTENCE_METHODS = {"save_to_db": "save", "load_from_db": "load"}


class MigrateError(Exception):
    """A service that cannot be migrated at all (dirty tree, not a PyMacaron service)."""


@dataclass
class Note:
    path: Path
    line: int
    what: str
    section: str

    def render(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}: {self.what} (see {DOC}#{self.section})"


@dataclass
class Plan:
    root: Path
    writes: dict[Path, str] = field(default_factory=dict)
    renames: dict[Path, Path] = field(default_factory=dict)
    deletes: list[Path] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.writes or self.renames or self.deletes)

    def diff(self) -> str:
        out: list[str] = []
        rel = self.root
        for old, new in self.renames.items():
            out.append(f"rename {old.relative_to(rel)} -> {new.relative_to(rel)}\n")
        for path in self.deletes:
            out.append(f"delete {path.relative_to(rel)}\n")
        for path, text in self.writes.items():
            source = next((old for old, new in self.renames.items() if new == path), path)
            before = source.read_text(encoding="utf-8") if source.exists() else ""
            name = str(path.relative_to(rel))
            out.extend(difflib.unified_diff(before.splitlines(True), text.splitlines(True), f"a/{name}", f"b/{name}"))
        return "".join(out)

    def apply(self) -> None:
        for old, new in self.renames.items():
            old.rename(new)
        for path, text in self.writes.items():
            path.write_text(text, encoding="utf-8")
        for path in self.deletes:
            path.unlink()


def _exports(module: str) -> set[str] | None:
    """Public names of a macaron module, or None when it is not installed here (then nothing is checked)."""
    import importlib

    try:
        return set(dir(importlib.import_module(module)))
    except ImportError:
        return None


def _dotted(node: Any) -> str:
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _target_attributes(target: Any) -> bool:
    """True when an assignment target only sets ``self.host``/``port``/``base_url``/``token`` (or a tuple of them)."""
    import libcst as cst

    if isinstance(target, cst.Attribute):
        return _dotted(target.value) == "self" and target.attr.value in TARGET_ATTRIBUTES
    if isinstance(target, (cst.Tuple, cst.List)):
        return all(_target_attributes(element.value) for element in target.elements)
    return False


def _error_name(call: Any) -> str | None:
    """The ``name`` given to ``add_error(...)`` as a string literal, or None."""
    import libcst as cst

    for index, arg in enumerate(call.args):
        if (arg.keyword is not None and arg.keyword.value == "name") or (arg.keyword is None and index == 0):
            value = arg.value.evaluated_value if isinstance(arg.value, cst.SimpleString) else None
            if isinstance(value, str) and value.isidentifier():
                return value
    return None


def _globals_key(target: Any) -> str | None:
    """``Name`` for the target ``globals()['Name']``, else None."""
    import libcst as cst

    if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Call) and _dotted(target.value.func) == "globals"):
        return None
    if target.value.args or len(target.slice) != 1 or not isinstance(target.slice[0].slice, cst.Index):
        return None
    key = target.slice[0].slice.value
    if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) and key.evaluated_value.isidentifier():
        return key.evaluated_value
    return None


def _module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def service_errors(root: Path, files: list[Path]) -> dict[str, str]:
    """The error classes a service makes with ``add_error(name=...)``: name -> the module that makes them."""
    import ast

    found: dict[str, str] = {}
    for path in files:
        source = path.read_text(encoding="utf-8")
        if "add_error" not in source:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        module = _module_name(root, path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "add_error":
                literal = next((k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None)
                if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
                    found.setdefault(literal.value, module)
    return found


def rewrite_python(path: Path, source: str, notes: list[Note], service_errors: dict[str, str] | None = None, module_name: str = "") -> str:
    """Return ``source`` with PyMacaron imports and idioms moved to macaron; unconvertible uses go to ``notes``."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    class Rewriter(cst.CSTTransformer):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def __init__(self) -> None:
            self.renamed: dict[str, str] = {}
            self.test_classes: list[bool] = []
            self.functions: list[str] = []
            self.statement_call: cst.BaseExpression | None = None
            self.service_errors = service_errors or {}  # add_error'd name -> module, for `from pymacaron.exceptions import Name`
            self.extra_statements: list[cst.BaseSmallStatement] = []
            self.logger_names: set[str] = set()
            self.report_error_names: set[str] = set()
            self.add_error_names: set[str] = set()
            self.dropped_bases: set[str] = set()
            self.has_logging_import = False
            self.persistence = "pymacaron_dynamodb" in source or "ApiPool" in source or "apipool" in source

        def visit_Module(self, node: cst.Module) -> None:
            self.has_logging_import = any(
                isinstance(stmt, cst.SimpleStatementLine)
                and any(isinstance(s, cst.Import) and any(_dotted(a.name) == "logging" for a in s.names) for s in stmt.body)
                for stmt in node.body
            )

        def _note(self, node: cst.CSTNode, what: str, section: str) -> None:
            notes.append(Note(path, self.get_metadata(PositionProvider, node).start.line, what, section))

        def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.BaseSmallStatement:
            module = _dotted(updated.module) if updated.module else ""
            if not (module.startswith("pymacaron") or module.startswith("pymacaron_")):
                return updated
            names = updated.names if not isinstance(updated.names, cst.ImportStar) else ()
            if module in ("pymacaron", "pymacaron_core.swagger.apipool"):
                kept = []
                for alias in names:
                    name = _dotted(alias.name)
                    if name in ("apipool", "ApiPool"):
                        self.renamed[name] = "apis"
                        kept.append(alias.with_changes(name=cst.Name("apis"), asname=None))
                    elif name in ("API", "letsgo"):
                        self._note(original, f"'{name}' is gone: serve with 'macaron serve'", "server-py-and-letsgo")
                    else:
                        kept.append(alias)
                        self._note(original, f"'from {module} import {name}' has no automatic equivalent", "imports")
                if not kept:
                    return cst.RemovalSentinel.REMOVE  # type: ignore[return-value]
                if any(_dotted(a.name) != "apis" for a in kept):
                    return updated
                last = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                return updated.with_changes(module=cst.Name("macaron"), names=[*kept[:-1], last])
            target = MODULES.get(module)
            if module in ("pymacaron.test", "pymacaron_unit", "pymacaron_unit.testcase"):
                return self._test_import(original, updated, module, names)
            if module.startswith("pymacaron_unit"):
                self._note(original, f"module '{module}' has no macaron-unit equivalent", "tests")
                return updated
            if target is None:
                self._note(original, f"module '{module}' has no macaron equivalent", "imports")
                return updated
            # Each name goes to its macaron module: most to `target`, a few elsewhere (report_error from
            # pymacaron.exceptions), errors a service made with add_error to the module that made them.
            by_module: dict[str, list[cst.ImportAlias]] = {}
            for alias in names:
                name = _dotted(alias.name)
                if module == "pymacaron.log" and name == "pymlogger":
                    self.logger_names.add(_dotted(alias.asname.name) if alias.asname else name)
                    continue
                if module == "pymacaron_dynamodb" and name in DROPPED_BASES:
                    self.dropped_bases.add(_dotted(alias.asname.name) if alias.asname else name)
                    continue
                if module == "pymacaron.exceptions" and name in self.service_errors:
                    if self.service_errors[name] != module_name:
                        by_module.setdefault(self.service_errors[name], []).append(alias)
                    continue  # made here: `Name = add_error(...)` defines it in this module
                destination = NAME_MODULES.get((module, name), target)
                if module == "pymacaron.exceptions" and name == "add_error":
                    self.add_error_names.add(_dotted(alias.asname.name) if alias.asname else name)
                if name == "report_error":
                    self.report_error_names.add(_dotted(alias.asname.name) if alias.asname else name)
                exports = _exports(destination)
                if exports is not None and NAMES.get(name, name) not in exports:
                    self._note(original, f"'{name}' from '{module}' has no equivalent in '{destination}'", "imports")
                if name in NAMES:
                    self.renamed[name] = NAMES[name]
                    alias = alias.with_changes(name=cst.Name(NAMES[name]))
                by_module.setdefault(destination, []).append(alias)
            if not names:  # from X import *
                return updated.with_changes(module=cst.parse_expression(target))
            statements: list[cst.BaseSmallStatement] = [
                cst.ImportFrom(
                    module=cast("cst.Attribute | cst.Name", cst.parse_expression(where)),
                    names=[*aliases[:-1], aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)],
                )
                for where, aliases in sorted(by_module.items(), key=lambda item: item[0] != target)
            ]
            if self.logger_names and not self.has_logging_import:
                statements.append(cst.Import([cst.ImportAlias(cst.Name("logging"))]))
                self.has_logging_import = True
            if not statements:
                return cst.RemovalSentinel.REMOVE  # type: ignore[return-value]
            first, *rest = statements
            if isinstance(first, cst.ImportFrom) and first.module is not None and _dotted(first.module) == target:
                first = updated.with_changes(module=first.module, names=first.names)  # keeps the parentheses and comments
            self.extra_statements.extend(rest)
            return first

        def _test_import(self, original: cst.ImportFrom, updated: cst.ImportFrom, module: str, names: Any) -> cst.ImportFrom:
            # PyMacaronTestCase (or pymacaron_unit's `testcase` module holding it) -> MacaronTestCase.
            def convertible(alias: cst.ImportAlias) -> bool:
                name = _dotted(alias.name)
                return name == "PyMacaronTestCase" or (module == "pymacaron_unit" and name == "testcase")

            others = [_dotted(alias.name) for alias in names if not convertible(alias)]
            if others or not names:
                for name in others or ["*"]:
                    self._note(original, f"'{name}' from '{module}' has no macaron-unit equivalent", "tests")
                return updated
            for alias in names:
                self.renamed[_dotted(alias.asname.name) if alias.asname else _dotted(alias.name)] = "MacaronTestCase"
            return updated.with_changes(module=cst.Name("macaron_unit"), names=[cst.ImportAlias(cst.Name("MacaronTestCase"))])

        # Test classes: PyMacaronTestCase's assertions become macaron-unit client calls (macaron/migrate_tests.py).
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            self.test_classes.append(any(_dotted(base.value) in TESTCASE_BASES for base in node.bases))

        def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
            self.test_classes.pop()
            return self._drop_bases(updated)

        def _in_test_class(self) -> bool:
            return bool(self.test_classes) and self.test_classes[-1]

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            self.functions.append(node.name.value)

        def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
            self.functions.pop()
            if isinstance(updated.body, cst.IndentedBlock) and not updated.body.body:
                return updated.with_changes(body=updated.body.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])]))
            return updated

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            first = node.body[0] if len(node.body) == 1 else None
            self.statement_call = first.value if isinstance(first, cst.Expr) else None

        def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine) -> Any:
            first = updated.body[0] if len(updated.body) == 1 else None
            if self.extra_statements:
                # An import split over several macaron modules: one line each, the comment on the first.
                extra = [cst.SimpleStatementLine([statement]) for statement in self.extra_statements]
                self.extra_statements = []
                return cst.FlattenSentinel([updated, *extra])
            if isinstance(first, cst.Expr) and isinstance(first.value, cst.Call) and _dotted(first.value.func) in self.add_error_names:
                # PyMacaron's add_error put the class in pymacaron.exceptions; macaron's only returns it.
                name = _error_name(first.value)
                if name is not None:
                    assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=first.value)
                    return updated.with_changes(body=[assign])
            if not self._in_test_class():
                return updated
            if (
                self.functions[-1:] == ["setUp"]
                and isinstance(first, cst.Assign)
                and all(_target_attributes(target.target) for target in first.targets)
            ):
                return cst.RemoveFromParent()  # PyMacaron's targeting: MacaronTestCase sets these from the fixtures
            if isinstance(first, cst.Expr) and cst.Module([]).code_for_node(first.value) == AUTH_VERSION[0]:
                return cst.FlattenSentinel([updated, cst.parse_statement(AUTH_VERSION[1] + "\n")])
            return updated

        def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
            # globals()['Name'] = value (PyMacaron's docs, after add_error) -> Name = value
            targets = []
            for target in updated.targets:
                name = _globals_key(target.target)
                targets.append(target.with_changes(target=cst.Name(name)) if name is not None else target)
            return updated.with_changes(targets=targets)

        def _drop_bases(self, updated: cst.ClassDef) -> cst.ClassDef:
            bases = [base for base in updated.bases if _dotted(base.value) not in self.dropped_bases]
            if len(bases) == len(updated.bases):
                return updated
            if not bases and not updated.keywords:
                return updated.with_changes(bases=[], lpar=cst.MaybeSentinel.DEFAULT, rpar=cst.MaybeSentinel.DEFAULT)
            return updated.with_changes(bases=[*bases[:-1], bases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)] if bases else [])

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            func = updated.func
            if isinstance(func, cst.Name) and func.value in self.logger_names:
                return updated.with_changes(func=cst.parse_expression("logging.getLogger"))
            if isinstance(func, cst.Name) and func.value in self.report_error_names:
                # PyMacaron's report_error(title, data, caught=...) -> macaron's exception=
                args = [
                    arg.with_changes(keyword=cst.Name("exception")) if arg.keyword and arg.keyword.value == "caught" else arg
                    for arg in updated.args
                ]
                return updated.with_changes(args=args)
            if isinstance(func, cst.Attribute) and func.attr.value in PERSISTENCE_METHODS and self.persistence:
                return updated.with_changes(func=func.with_changes(attr=cst.Name(PERSISTENCE_METHODS[func.attr.value])))
            if not (self._in_test_class() and isinstance(func, cst.Attribute) and _dotted(func.value) == "self"):
                return updated
            name = func.attr.value
            try:
                if name == "assertHasAuthVersion" and original is not self.statement_call:
                    raise NotMechanical(
                        "'assertHasAuthVersion' used as a value: call assert_requires_auth, then get /auth/version with a token"
                    )
                converted = convert_assertion(name, updated)
            except NotMechanical as why:
                self._note(original, f"{why}; left as it was", "tests")
                return updated
            return updated if converted is None else cst.parse_expression(converted)

        def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
            for alias in updated.names:
                name = _dotted(alias.name)
                if name.startswith("pymacaron"):
                    self._note(original, f"'import {name}': rewrite uses of it by hand", "imports")
            return updated

        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            if updated.value in self.renamed:
                return updated.with_changes(value=self.renamed[updated.value])
            return updated

        def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
            # 1.x: ApiPool.<api>.model.<Model> -> apis.<api>.<Model>
            inner = updated.value
            if (
                isinstance(inner, cst.Attribute)
                and inner.attr.value == "model"
                and isinstance(inner.value, cst.Attribute)
                and _dotted(inner.value.value) == "apis"
            ):
                return updated.with_changes(value=inner.value)
            if _dotted(original) in TESTCASE_BASES and self.renamed.get(_dotted(original.value)) == "MacaronTestCase":
                return cst.Name("MacaronTestCase")  # testcase.PyMacaronTestCase, testcase imported from pymacaron_unit
            if isinstance(inner, cst.Attribute) and inner.attr.value == "client" and _dotted(inner.value).startswith("apis."):
                self._note(original, "ApiPool client call: use macaron's clients (apis.<api>.client)", "imports")
            return updated

    module = cst.parse_module(source)
    return MetadataWrapper(module).visit(Rewriter()).code


# What a server.py that only boots may call: Flask and logging set-up, sys.path edits, os.path helpers...
BOOT_CALLS = {"Flask", "flask.Flask", "logging.getLogger", "getLogger", "pymlogger", "logging.basicConfig", "os.environ.get", "os.getenv"}
BOOT_CALL_PREFIXES = ("os.path.", "sys.path.")
# ... and, on the API object, its loading and starting methods.
API_METHODS = {"load_apis", "load_clients", "publish_apis", "start"}
# API(...) arguments that only say how to serve; any other (error_reporter, ping_hook...) is code to move.
API_ARGUMENTS = {"app", "port", "debug", "host", "include_crash_api", "log_level"}


def _server_only_boots(source: str) -> bool:
    """True when server.py (parsed with libcst) only imports, builds ``API(...)``, loads and starts it, and calls letsgo."""
    import libcst as cst

    module = cst.parse_module(source)
    api_names: set[str] = set()
    built_api = False

    def boot_expression(node: cst.BaseExpression) -> bool:
        """A constant, a name, or a call of the boot helpers with such arguments."""
        if isinstance(node, (cst.SimpleString, cst.Integer, cst.Name, cst.Attribute)):
            return True
        if isinstance(node, cst.Call):
            name = _dotted(node.func)
            return (name in BOOT_CALLS or name.startswith(BOOT_CALL_PREFIXES)) and all(boot_expression(a.value) for a in node.args)
        return False

    def api_call(node: cst.BaseExpression) -> bool:
        nonlocal built_api
        if not (isinstance(node, cst.Call) and _dotted(node.func) in ("API", "pymacaron.API")):
            return False
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword is not None else ("app" if index == 0 else None)
            if keyword not in API_ARGUMENTS or not boot_expression(arg.value):
                return False
        built_api = True
        return True

    def boot_statement(stmt: cst.CSTNode, in_function: bool) -> bool:
        if isinstance(stmt, cst.SimpleStatementLine):
            return all(boot_small(small, in_function) for small in stmt.body)
        if isinstance(stmt, cst.FunctionDef) and not in_function and not stmt.decorators:
            return all(boot_statement(inner, True) for inner in stmt.body.body)
        if isinstance(stmt, cst.If) and not in_function and "__main__" in module.code_for_node(stmt.test) and stmt.orelse is None:
            return all(boot_statement(inner, False) for inner in stmt.body.body)
        return False

    def boot_small(small: cst.BaseSmallStatement, in_function: bool) -> bool:
        if isinstance(small, (cst.Import, cst.ImportFrom, cst.Pass)):
            return True
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            if api_call(small.value):
                api_names.add(small.targets[0].target.value)
                return True
            return boot_expression(small.value)
        if isinstance(small, cst.Expr):
            value = small.value
            if isinstance(value, cst.SimpleString):
                return True  # a docstring
            if not isinstance(value, cst.Call):
                return False
            name = _dotted(value.func)
            if name in ("letsgo", "pymacaron.letsgo"):
                return True
            if api_call(value):
                return True
            owner, _, method = name.rpartition(".")
            if isinstance(value.func, cst.Attribute) and isinstance(value.func.value, cst.Call) and api_call(value.func.value):
                return method in API_METHODS  # API(app).start(...)
            if owner in api_names and method in API_METHODS:
                return True
            return boot_expression(value)
        return False

    return all(boot_statement(stmt, False) for stmt in module.body) and built_api


def plan(root: Path) -> Plan:
    result = Plan(root)
    # Config: keep the content (macaron reads pym-config keys), move the names.
    for old in sorted(root.glob("pym-config*.yaml")):
        new = root / old.name.replace("pym-config", "macaron", 1)
        if new.exists():
            result.notes.append(Note(old, 1, f"both {old.name} and {new.name} exist; merge them by hand", "config"))
            continue
        result.renames[old] = new
    for path in sorted({*root.glob("pym-config*.yaml"), *root.glob("macaron*.yaml")}):
        shown = result.renames.get(path, path)
        text = path.read_text(encoding="utf-8")
        try:
            review = review_config(text)
        except yaml.YAMLError as exc:
            result.notes.append(Note(shown, _yaml_line(exc), "not valid YAML, left unchanged", "config"))
            continue
        result.notes.extend(Note(shown, line, what, section) for line, _key, what, section in review.advice)
        if review.text != text:
            result.writes[shown] = review.text
    # Specs: rewrite known callables, keep the rest.
    apis_dir = root / "apis"
    for spec in sorted([*apis_dir.glob("*.yaml"), *apis_dir.glob("*.yml")]) if apis_dir.is_dir() else []:
        text = spec.read_text(encoding="utf-8")
        try:
            new_text, left = rewrite_spec(text)
        except yaml.YAMLError as exc:
            result.notes.append(Note(spec, _yaml_line(exc), "not valid YAML, left unchanged", "specs"))
            continue
        result.notes.extend(Note(spec, line, f"spec names PyMacaron: {value}", "specs") for line, value in left)
        if new_text != text:
            result.writes[spec] = new_text
        # 2.x generated code: macaron generates nothing.
        for generated in (apis_dir / f"{spec.stem}_app.py", apis_dir / f"{spec.stem}_models.py"):
            if generated.exists():
                result.deletes.append(generated)
    server = root / "server.py"
    skip = set(result.deletes)
    if server.exists():
        skip.add(server)  # removed whole or left for the user, never half-rewritten
        if _server_only_boots(server.read_text(encoding="utf-8")):
            result.deletes.append(server)
            skip.add(server)
        else:
            result.notes.append(
                Note(server, 1, "server.py does more than API(...)/letsgo: move that code, then delete it", "server-py-and-letsgo")
            )
    python_files = [
        path
        for path in sorted(root.rglob("*.py"))
        if path not in skip and not any(part.startswith(".") or part in ("venv", "node_modules") for part in path.relative_to(root).parts)
    ]
    errors = service_errors(root, python_files)
    for path in python_files:
        source = path.read_text(encoding="utf-8")
        if "pymacaron" not in source and "ApiPool" not in source:
            continue
        try:
            new_source = rewrite_python(path, source, result.notes, errors, _module_name(root, path))
        except Exception as exc:  # libcst.ParserSyntaxError: report, keep the file as is
            result.notes.append(
                Note(path, getattr(exc, "raw_line", 1), f"not valid Python, left unchanged: {str(exc).splitlines()[0]}", "imports")
            )
            continue
        if new_source != source:
            result.writes[path] = new_source
    return result


def _yaml_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


def check_clean(root: Path) -> None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "."], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return
    if out.returncode != 0:
        return  # not a git checkout: nothing to protect a diff against
    if out.stdout.strip():
        raise MigrateError(f"{root}: the git tree has uncommitted changes; commit or stash them so the migration diff is reviewable")


def run(root: Path, dry_run: bool) -> tuple[Plan, str]:
    try:
        import libcst  # noqa: F401
    except ImportError as exc:
        # The extra's name alone would send pip to the index, where a checkout's macaron-core may not be.
        raise MigrateError("macaron migrate needs libcst: pip install 'libcst>=1.1' (the extra macaron-core[migrate])") from exc
    if not dry_run:
        check_clean(root)
    result = plan(root)
    diff = result.diff()
    if not dry_run:
        result.apply()
    return result, diff
