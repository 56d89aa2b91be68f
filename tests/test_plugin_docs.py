"""docs/plugins.md documents every hook with its exact signature and calling convention, and every hook has a test.

(Named test_plugin_docs.py: packages/core/tests/test_docs.py exists and pytest wants test basenames unique.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from macaron.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
HEADING = re.compile(r"^### (\w+)\((.*)\)\s*$", re.MULTILINE)
CONVENTION = re.compile(r"^Calling convention: \*\*(\w+)\*\*", re.MULTILINE)


def hook_specs() -> dict[str, tuple[tuple[str, ...], str]]:
    """Every hook of the plugin manager: its argument names and its calling convention."""
    hooks = {}
    for name, caller in vars(get_plugin_manager(load_entrypoints=False).hook).items():
        spec = getattr(caller, "spec", None)
        if spec is None:
            continue
        convention = "firstresult" if spec.opts.get("firstresult") else "historic" if spec.opts.get("historic") else "all"
        hooks[name] = (tuple(spec.argnames), convention)
    return hooks


def documented_hooks() -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Every ``### name(args)`` heading of docs/plugins.md, with the convention its section states."""
    text = PLUGINS_DOC.read_text()
    matches = list(HEADING.finditer(text))
    documented: dict[str, tuple[tuple[str, ...], str | None]] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        section = text[match.end() : following.start() if following else len(text)]
        section = section.split("\n## ", 1)[0]
        arguments = tuple(arg.strip() for arg in match.group(2).split(",") if arg.strip())
        convention = CONVENTION.search(section)
        assert match.group(1) not in documented, f"docs/plugins.md documents {match.group(1)} twice"
        documented[match.group(1)] = (arguments, convention.group(1) if convention else None)
    return documented


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    specs, documented = hook_specs(), documented_hooks()
    assert specs, "the plugin manager has no hooks?"
    missing = sorted(set(specs) - set(documented))
    assert not missing, f"docs/plugins.md has no '### <hook>(<args>)' heading for: {', '.join(missing)}"
    wrong = [
        f"{name}: documented ({', '.join(documented[name][0])}), spec ({', '.join(args)})"
        for name, (args, _) in specs.items()
        if documented[name][0] != args
    ]
    assert not wrong, "signatures differ from the hook specs: " + "; ".join(wrong)


def test_every_documented_hook_exists_and_states_its_calling_convention() -> None:
    specs, documented = hook_specs(), documented_hooks()
    stale = sorted(set(documented) - set(specs))
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {', '.join(stale)}"
    wrong = [
        f"{name}: documented {documented[name][1]!r}, spec {convention!r}"
        for name, (_, convention) in specs.items()
        if documented[name][1] != convention
    ]
    assert not wrong, "'Calling convention: **...**' lines differ from the hook specs: " + "; ".join(wrong)


def test_every_hook_has_a_test() -> None:
    test_files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("packages/*/tests/**/test_*.py")]
    defined = {match for path in test_files for match in re.findall(r"^\s*(?:async )?def (test_hook_\w+)\(", path.read_text(), re.MULTILINE)}
    untested = sorted(name for name in hook_specs() if f"test_hook_{name}" not in defined)
    assert not untested, f"no test named test_hook_<name> (in tests/ or packages/*/tests/) for: {', '.join(untested)}"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_docstring_states_the_same_convention(name: str) -> None:
    """The hookspec docstring and the docs page must not contradict each other about firstresult/historic."""
    caller = getattr(get_plugin_manager(load_entrypoints=False).hook, name)
    docstring = caller.spec.function.__doc__ or ""
    assert docstring.strip(), f"hook {name} has no docstring"
    _, convention = hook_specs()[name]
    if convention == "all":
        assert "firstresult:" not in docstring and "historic:" not in docstring
    else:
        assert f"{convention}:" in docstring, f"the docstring of {name} does not say '{convention}:'"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command.endswith("nox -s tests")
    assert ci_command in (ROOT / "README.md").read_text().splitlines()


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [target for target in targets if "://" not in target]
    assert "docs/plugins.md" in local
    assert not [target for target in local if not (ROOT / target).exists()]
