"""One test per hook, ``test_hook_<name>``, each through a plugin registered at run time.

Every test builds its own plugin manager (built-ins only, no entry points) so no
plugin leaks from one test into another; tests/test_docs.py checks that every
hook of the manager has its test here.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from flask import Flask

import macaron.plugins
from macaron import create_app, hookimpl, service_of
from macaron.cli import cli, deploy_targets
from macaron.config import Config
from macaron.plugins import MacaronPluginManager, get_plugin_manager
from macaron.spec import Api, Operation, Response, SpecError

_modules = itertools.count()


def body(response: Any) -> Any:
    """The JSON body of a test client's response."""
    return response.get_json()


class Services:
    """Writes service folders (macaron.yaml, apis/*.yaml, a handler module) and builds their apps."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.modules: list[str] = []

    def write(self, specs: dict[str, str], handlers: str, config: dict[str, Any] | None = None) -> Path:
        """A service folder; the text ``HANDLERS`` in specs and handlers becomes the module's unique name."""
        module = f"hook_handlers_{next(_modules)}"
        self.modules.append(module)
        root = self.tmp_path / module
        (root / "apis").mkdir(parents=True)
        (root / "macaron.yaml").write_text(yaml.safe_dump({"name": "hooked", **(config or {})}))
        for name, text in specs.items():
            (root / "apis" / name).write_text(textwrap.dedent(text).replace("HANDLERS", module))
        (root / f"{module}.py").write_text(textwrap.dedent(handlers))
        return root

    def app(self, root: Path, *plugins: Any) -> Flask:
        manager = get_plugin_manager(load_entrypoints=False)
        for plugin in plugins:
            manager.register_plugin(plugin)
        app = create_app(root, plugin_manager=manager)
        app.testing = True
        return app

    def cleanup(self) -> None:
        for module in self.modules:
            sys.modules.pop(module, None)
        roots = {str((self.tmp_path / module).resolve()) for module in self.modules}
        sys.path[:] = [entry for entry in sys.path if entry not in roots]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    maker = Services(tmp_path)
    yield maker
    maker.cleanup()


SWAGGER = """\
swagger: '2.0'
info: {title: hooked, version: '1'}
produces: [application/json]
consumes: [application/json]
paths:
  /items/{name}:
    get:
      operationId: getItem
      x-bind-server: HANDLERS.get_item
      x-audit: true
      parameters:
        - {name: name, in: path, required: true, type: string, maxLength: 8}
      responses:
        200:
          description: An item.
          schema: {$ref: '#/definitions/Item'}
  /plain:
    get:
      operationId: plain
      x-bind-server: HANDLERS.plain
      responses:
        200:
          description: Nothing much.
          schema: {type: object}
definitions:
  Item:
    type: object
    required: [name]
    properties:
      name: {type: string}
"""
HANDLERS = """\
def get_item(name):
    return {"name": name}

def plain():
    return {}
"""


# -- load_spec --------------------------------------------------------------------


class RouteListFormat:
    """A toy spec format: ``routes: {"GET /path": "module.function"}``, every response an object with ``text``."""

    @hookimpl
    def load_spec(self, path: Path, config: Config) -> Api | None:
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict) or "routes" not in document:
            return None
        text_schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
        operations = []
        for route, handler in document["routes"].items():
            method, route_path = route.split()
            operations.append(
                Operation(
                    api=document["name"], method=method.lower(), path=route_path, operation_id=handler.rsplit(".", 1)[-1],
                    handler=handler, decorators=[], parameters=[], responses={200: Response(200, text_schema)},
                    consumes=["application/json"], produces=["application/json"], security=[], extensions={},
                    file=path, pointer=f"/routes/{route}",
                )
            )
        return Api(
            name=document["name"], file=path, version="1", title=document["name"], base_path="", operations=operations,
            definitions={}, security_definitions={}, document=document, format="route-list",
        )


def test_hook_load_spec(services: Services) -> None:
    routes = """\
    name: routes
    routes:
      GET /hi: HANDLERS.hi
      GET /wrong: HANDLERS.wrong
    """
    handlers = HANDLERS + "\ndef hi():\n    return {'text': 'hi'}\n\ndef wrong():\n    return {'text': 42}\n"
    root = services.write({"hooked.yaml": SWAGGER, "routes.yaml": routes}, handlers)

    app = services.app(root, RouteListFormat())
    service = service_of(app)
    assert service.apis["routes"].format == "route-list"
    assert service.apis["hooked"].format == "swagger-2.0", "a load_spec returning None lets the built-in loader take the file"
    client = app.test_client()
    assert client.get("/hi").json == {"text": "hi"}
    # The engine validates what a custom format declares, as for Swagger.
    wrong = client.get("/wrong")
    assert wrong.status_code == 500 and body(wrong)["error"] == "BAD_RESPONSE"
    assert client.get("/items/pen").json == {"name": "pen"}

    with pytest.raises(SpecError, match=r"routes\.yaml.*no plugin can load this spec"):
        services.app(root)


# -- register_apis ----------------------------------------------------------------


def test_hook_register_apis(services: Services, tmp_path: Path) -> None:
    extra_folder = tmp_path / "extra"
    extra_folder.mkdir()
    extra_spec = extra_folder / "status.yaml"
    root = services.write({"hooked.yaml": SWAGGER}, HANDLERS + "\ndef status():\n    return {'state': 'green'}\n")
    module = services.modules[-1]
    extra_spec.write_text(
        textwrap.dedent(f"""\
        swagger: '2.0'
        info: {{title: status, version: '1'}}
        produces: [application/json]
        paths:
          /status:
            get:
              x-bind-server: {module}.status
              responses:
                200: {{description: State., schema: {{type: object, properties: {{state: {{type: string}}}}}}}}
        """)
    )
    calls: list[str] = []

    class StatusApi:
        @hookimpl
        def register_apis(self, config: Config) -> list[Path]:
            calls.append(str(config["name"]))
            return [extra_spec]

    client = services.app(root, StatusApi()).test_client()
    assert calls == ["hooked"], "called once, at start-up, with the service's config"
    assert client.get("/status").json == {"state": "green"}
    assert {"hooked", "status"} <= set(body(client.get("/version"))["apis"])
    assert client.get("/ping").status_code == 200, "the built-in /ping comes through the same hook"


# -- wrap_endpoint ----------------------------------------------------------------


def test_hook_wrap_endpoint(services: Services) -> None:
    seen_at_startup: list[str] = []
    seen_per_request: list[tuple[str, dict[str, Any]]] = []

    class Audit:
        @hookimpl
        def wrap_endpoint(self, handler: Callable[..., Any], operation: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
            seen_at_startup.append(operation.name)
            if not operation.extensions.get("x-audit"):
                return None

            def decorator(inner: Callable[..., Any]) -> Callable[..., Any]:
                @functools.wraps(inner)
                def audited(*args: Any, **kwargs: Any) -> Any:
                    seen_per_request.append((operation.name, kwargs))
                    return inner(*args, **kwargs), None, {"X-Audited": operation.name}

                return audited

            return decorator

    app = services.app(services.write({"hooked.yaml": SWAGGER}, HANDLERS), Audit())
    bound = [operation.name for api in service_of(app).apis.values() for operation in api.operations]
    assert {"getItem", "plain", "ping"} <= set(bound)
    assert sorted(seen_at_startup) == sorted(bound), "once per bound operation, at start-up"
    client = app.test_client()
    response = client.get("/items/pen")
    assert response.status_code == 200 and response.json == {"name": "pen"}
    assert response.headers["X-Audited"] == "getItem"
    assert "X-Audited" not in client.get("/plain").headers, "None means: leave the handler as it is"
    assert client.get("/items/far-too-long").status_code == 400
    assert seen_per_request == [("getItem", {"name": "pen"})], "the decorator runs after validation, with the handler's arguments"


# -- on_error ---------------------------------------------------------------------


def test_hook_on_error(services: Services) -> None:
    seen: list[tuple[int, str | None, str | None]] = []

    class Apologise:
        @hookimpl
        def on_error(self, error: dict[str, Any], exception: BaseException | None, operation: Operation | None) -> None:
            seen.append((error["status"], type(exception).__name__ if exception else None, operation.name if operation else None))
            error["user_message"] = "Sorry about that."
            error["status"] = 200  # ignored: a plugin cannot turn an error into a success

    class Broken:
        @hookimpl
        def on_error(self, error: dict[str, Any]) -> None:
            raise RuntimeError("a buggy plugin")

    client = services.app(services.write({"hooked.yaml": SWAGGER}, HANDLERS), Broken(), Apologise()).test_client()
    invalid = client.get("/items/far-too-long")
    assert invalid.status_code == 400
    assert body(invalid)["user_message"] == "Sorry about that." and body(invalid)["status"] == 400
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and body(missing)["user_message"] == "Sorry about that."
    assert seen == [(400, "ValidationError", "getItem"), (404, "NotFound", None)]
    assert client.get("/items/pen").status_code == 200 and len(seen) == 2, "not called on success"


# -- persist_model ----------------------------------------------------------------


PERSISTED = SWAGGER.replace("    type: object\n    required: [name]\n", "    type: object\n    x-persist: memory\n    required: [name]\n")
SAVING_HANDLERS = """\
from macaron import apis

def get_item(name):
    item = apis.hooked.Item(name=name)
    item.save()
    return item

def plain():
    return {}
"""


def test_hook_persist_model(services: Services) -> None:
    stored: dict[str, dict[str, Any]] = {}
    claimed: list[tuple[str, Any]] = []

    class MemoryBackend:
        @hookimpl
        def persist_model(self, model: type, definition: dict[str, Any], api: Api, config: Config) -> bool | None:
            if definition.get("x-persist") != "memory":
                return None
            claimed.append((model.__name__, definition["x-persist"], api.file.name))

            def save(item: Any) -> None:
                stored[item.name] = item.to_json()

            model.save = save  # type: ignore[attr-defined]
            return True

    root = services.write({"hooked.yaml": PERSISTED}, SAVING_HANDLERS)
    client = services.app(root, MemoryBackend()).test_client()
    assert claimed == [("Item", "memory", "hooked.yaml")]
    assert client.get("/items/pen").json == {"name": "pen"}
    assert stored == {"pen": {"name": "pen"}}

    with pytest.raises(SpecError) as no_backend:
        services.app(root)
    assert "hooked.yaml" in str(no_backend.value) and "/definitions/Item/x-persist" in str(no_backend.value)

    other = services.write({"hooked.yaml": PERSISTED.replace("x-persist: memory", "x-persist: elsewhere")}, SAVING_HANDLERS)
    with pytest.raises(SpecError, match="/definitions/Item/x-persist"):
        services.app(other, MemoryBackend())


# -- startup ----------------------------------------------------------------------


def test_hook_startup(services: Services) -> None:
    class Health:
        @hookimpl
        def startup(self, app: Flask, config: Config) -> None:
            bound = sorted(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static")
            app.add_url_rule("/healthz", "healthz", lambda: {"service": config["name"], "routes_when_called": bound})

    client = services.app(services.write({"hooked.yaml": SWAGGER}, HANDLERS), Health()).test_client()
    health = body(client.get("/healthz"))
    assert health["service"] == "hooked"
    assert "/items/<name>" in health["routes_when_called"] and "/ping" in health["routes_when_called"], "called once every route is bound"


# -- register_commands ------------------------------------------------------------


def test_hook_register_commands() -> None:
    class Hello:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command()
            @click.argument("name")
            def hello(name: str) -> None:
                click.echo(f"hello {name}")

    manager = get_plugin_manager(load_entrypoints=False)
    early: click.Group = click.Group("early")
    manager.register_plugin(Hello())
    manager.hook.register_commands.call_historic(kwargs={"cli": early})
    assert CliRunner().invoke(early, ["hello", "ann"]).output == "hello ann\n"

    manager = get_plugin_manager(load_entrypoints=False)
    late: click.Group = click.Group("late")
    manager.hook.register_commands.call_historic(kwargs={"cli": late})
    assert "hello" not in late.commands
    manager.register_plugin(Hello())
    assert CliRunner().invoke(late, ["hello", "bo"]).output == "hello bo\n", "historic: a plugin registered late gets its commands"


# -- register_deploy_targets and on_deploy ---------------------------------------


class Toy:
    """Deploys to 'toy' by recording what it was asked."""

    def __init__(self) -> None:
        self.deploys: list[dict[str, Any]] = []

    @hookimpl
    def register_deploy_targets(self) -> list[str]:
        return ["toy", "toy-eu"]

    @hookimpl
    def on_deploy(self, target: str, service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any] | None:
        if target not in ("toy", "toy-eu"):
            return None
        if config.get("fail_deploy"):
            raise RuntimeError("the toy cloud is down")
        self.deploys.append({"target": target, "service_path": service_path, "name": config["name"], "env": config.env, **options})
        return {"target": target, "url": f"https://{target}.example/{config['name']}"}


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> MacaronPluginManager:
    """A plugin manager that the ``macaron`` CLI uses, in this process, for this test only."""
    manager = get_plugin_manager(load_entrypoints=False)
    monkeypatch.setattr(macaron.plugins, "_pm", manager)
    monkeypatch.delenv("MACARON_ENV", raising=False)
    return manager


def test_hook_register_deploy_targets(manager: MacaronPluginManager) -> None:
    runner = CliRunner()
    assert deploy_targets(manager) == {}
    assert "No deploy target installed" in runner.invoke(cli, ["deploy"]).output

    manager.register_plugin(Toy(), name="toy-plugin")
    assert deploy_targets(manager) == {"toy": "toy-plugin", "toy-eu": "toy-plugin"}
    listing = runner.invoke(cli, ["deploy", "--list"])
    assert listing.exit_code == 0
    assert [line.split() for line in listing.output.splitlines()[2:]] == [["toy", "toy-plugin", "-"], ["toy-eu", "toy-plugin", "-"]]

    unknown = runner.invoke(cli, ["deploy", "mars"])
    assert unknown.exit_code == 1 and "unknown deploy target 'mars' (known targets: toy, toy-eu)" in unknown.output

    class Rival:
        @hookimpl
        def register_deploy_targets(self) -> list[str]:
            return ["toy-eu"]

    manager.register_plugin(Rival(), name="rival")
    clash = runner.invoke(cli, ["deploy", "--list"])
    assert clash.exit_code == 1
    assert "deploy target 'toy-eu' is named by two plugins" in clash.output and "'toy-plugin'" in clash.output and "'rival'" in clash.output

    class Sloppy:
        @hookimpl
        def register_deploy_targets(self) -> str:
            return "oops"

    manager.unregister(name="rival")
    manager.register_plugin(Sloppy(), name="sloppy")
    assert "must return a list of names" in runner.invoke(cli, ["deploy", "--list"]).output


def test_hook_on_deploy(manager: MacaronPluginManager, services: Services) -> None:
    toy = Toy()
    manager.register_plugin(toy, name="toy-plugin")
    root = services.write({"hooked.yaml": SWAGGER}, HANDLERS, config={"version": "3.1.0"})
    (root / "macaron.staging.yaml").write_text("region: eu\n")
    runner = CliRunner()

    result = runner.invoke(cli, ["deploy", "toy-eu", str(root), "--env", "staging", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output == "target: toy-eu\nurl: https://toy-eu.example/hooked\n"
    assert toy.deploys == [
        {
            "target": "toy-eu", "service_path": root.resolve(), "name": "hooked", "env": "staging",
            "dry_run": True, "version": "3.1.0", "json": False, "rehearse": False,
        }
    ]
    result = runner.invoke(cli, ["deploy", "toy", str(root), "--version", "4.0.0"])
    assert result.exit_code == 0, result.output
    assert toy.deploys[-1] | {"service_path": None} == {
        "target": "toy", "service_path": None, "name": "hooked", "env": None, "dry_run": False, "version": "4.0.0",
        "json": False, "rehearse": False,
    }

    (root / "macaron.yaml").write_text(yaml.safe_dump({"name": "hooked", "fail_deploy": True}))
    failed = runner.invoke(cli, ["deploy", "toy", str(root)])
    assert failed.exit_code == 1
    assert "deploy to 'toy' (plugin 'toy-plugin') failed: RuntimeError: the toy cloud is down" in failed.output

    class Claims:
        @hookimpl
        def register_deploy_targets(self) -> list[str]:
            return ["nowhere"]

    manager.register_plugin(Claims(), name="claims")
    unhandled = runner.invoke(cli, ["deploy", "nowhere", str(root)])
    assert unhandled.exit_code == 1 and "did not deploy to it (on_deploy returned None)" in unhandled.output


def test_hook_deploy_options(manager: MacaronPluginManager, services: Services) -> None:
    toy = Toy()

    class ToyOptions:
        @hookimpl
        def deploy_options(self, target: str) -> list[click.Parameter] | None:
            if target != "toy":
                return None
            return [
                click.Option(["--rollback"], is_flag=False, flag_value="previous", default=None, help="Put a version live again."),
                click.Option(["--keep"], type=int, default=2, help="Versions to keep."),
            ]

    manager.register_plugin(toy, name="toy-plugin")
    manager.register_plugin(ToyOptions(), name="toy-options")
    root = services.write({"hooked.yaml": SWAGGER}, HANDLERS, config={"version": "3.1.0"})
    runner = CliRunner()

    helped = runner.invoke(cli, ["deploy", "toy", "--help"])
    assert helped.exit_code == 0 and "--rollback" in helped.output and "--keep" in helped.output and "--rehearse" in helped.output
    assert "--rollback" not in runner.invoke(cli, ["deploy", "toy-eu", "--help"]).output

    result = runner.invoke(cli, ["deploy", "toy", str(root), "--rollback", "--keep", "5", "--rehearse", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"target": "toy", "url": "https://toy.example/hooked"}
    assert {key: toy.deploys[-1][key] for key in ("rollback", "keep", "rehearse", "json")} == {
        "rollback": "previous", "keep": 5, "rehearse": True, "json": True,
    }
    runner.invoke(cli, ["deploy", "toy", str(root), "--rollback", "2.9.0"])
    assert toy.deploys[-1]["rollback"] == "2.9.0" and toy.deploys[-1]["keep"] == 2

    bad = runner.invoke(cli, ["deploy", "toy", str(root), "--keep", "many"])
    assert bad.exit_code == 2 and "'many' is not a valid integer" in bad.output and len(toy.deploys) == 2

    class Clash:
        @hookimpl
        def deploy_options(self, target: str) -> list[click.Parameter]:
            return [click.Option(["--dry-run"], is_flag=True)]

    manager.register_plugin(Clash(), name="clash")
    clash = runner.invoke(cli, ["deploy", "toy", str(root)])
    assert clash.exit_code == 1 and "option 'dry_run' is defined twice" in clash.output and len(toy.deploys) == 2
    manager.unregister(name="clash")

    class ClashWithClickName:  # --as-json is the name click gives macaron's own --json
        @hookimpl
        def deploy_options(self, target: str) -> list[click.Parameter]:
            return [click.Option(["--as-json"], is_flag=True)]

    manager.register_plugin(ClashWithClickName(), name="clash2")
    clash = runner.invoke(cli, ["deploy", "toy", str(root)])
    assert clash.exit_code == 1 and "option 'as_json' is defined twice" in clash.output and len(toy.deploys) == 2
