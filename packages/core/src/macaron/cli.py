"""The ``macaron`` command line. Plugins add commands through the ``register_commands`` hook."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from macaron import __version__
from macaron.plugins import MacaronPluginManager, PluginLoadError, pm
from macaron.server import SERVERS

if TYPE_CHECKING:
    from macaron.app import Service

SERVICE_PATH = click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
ENV_OPTION = click.option("--env", default=None, envvar="MACARON_ENV", help="Config overlay to use: macaron.<env>.yaml.")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@click.group()
@click.version_option(__version__, prog_name="macaron")
def cli() -> None:
    """macaron: serve, check and deploy spec-first microservices."""


@cli.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_list(as_json: bool) -> None:
    """List every plugin: built-ins and those installed under the entry-point group 'macaron'."""
    manager = pm()
    infos = manager.plugin_infos()
    targets: dict[str, list[str]] = {}
    for target, plugin in sorted(deploy_targets(manager).items()):
        targets.setdefault(plugin, []).append(target)
    if as_json:
        click.echo(json.dumps([{**info.as_dict(), "deploy_targets": targets.get(info.name, [])} for info in infos], indent=2))
        return
    rows = [
        [
            info.name,
            f"{info.distribution or '-'} {info.version or ''}".strip() + (" (built-in)" if info.builtin else ""),
            info.module,
            ", ".join(targets.get(info.name, [])) or "-",
            ", ".join(info.hooks) or "-",
        ]
        for info in infos
    ]
    click.echo(_table(rows, ["plugin", "distribution", "module", "targets", "hooks"]))


def load_for_command(path: Path, env: str | None, *, bind: bool = True) -> Service:
    """The service in ``path`` for a command: loaded, and bound to its app unless ``bind`` is false.

    ``bind=False`` stops after :func:`macaron.app.load_service` (no handler imported). A
    start-up problem becomes a one-line ClickException. Plugin commands use this too.
    """
    from macaron.app import bind_service, load_service
    from macaron.startup import StartupError

    try:
        service = load_service(path, env)
        if bind:
            bind_service(service)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from exc
    return service


@cli.command()
@SERVICE_PATH
@ENV_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the service to the network.")
@click.option("--port", default=8080, envvar="PORT", show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Debugger, and reload on changes to code, specs or config (development only).")
@click.option("--prod", is_flag=True, help="Serve as in production: granian (default) or gunicorn, several workers.")
@click.option(
    "--server", type=click.Choice(SERVERS), default=None, help="Production server (with --prod; default: 'serve.server' in macaron.yaml, else granian)."
)
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Worker processes (with --prod; default: granian 1 per core, gunicorn 2 x cores + 1).")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="Threads per worker (with --prod; default: granian 1, gunicorn 4).")
@click.option("--timeout", default=None, type=click.IntRange(min=1), help="gunicorn: seconds a worker may stop answering its master before it is replaced (default 30).")
@click.option("--max-requests", default=None, type=click.IntRange(min=0), help="gunicorn: recycle a worker after this many requests (default 0: never).")
def serve(
    path: Path,
    env: str | None,
    host: str,
    port: int,
    debug: bool,
    prod: bool,
    **production: Any,
) -> None:
    """Serve the service in PATH (default: the current folder).

    Production options not given on the command line come from the 'serve' section of macaron.yaml.
    """
    from macaron.server import serve_development, serve_production
    from macaron.startup import StartupError

    try:
        if prod:
            serve_production(path, env, host, port, **production)
        else:
            serve_development(path, env, host, port, debug)
    except StartupError as exc:  # ServeConfigError too
        raise click.ClickException(str(exc)) from exc


@cli.command()
@SERVICE_PATH
@ENV_OPTION
@click.option("--thorough", is_flag=True, help="Also run swagger-spec-validator's full (slower) check on each spec.")
def validate(path: Path, env: str | None, thorough: bool) -> None:
    """Check specs, handler bindings and config of the service in PATH without serving it."""
    service = load_for_command(path, env)
    if thorough:
        from swagger_spec_validator import validator20
        from swagger_spec_validator.common import SwaggerValidationError

        for api in service.apis.values():
            if api.format != "swagger-2.0":
                continue
            try:
                validator20.validate_spec(json.loads(json.dumps(api.document)), api.file.as_uri())
            except SwaggerValidationError as exc:
                raise click.ClickException(f"{api.file}: {exc}") from exc
    count = sum(len(api.operations) for api in service.apis.values())
    click.echo(f"{service.name}: {len(service.apis)} APIs, {count} operations, all bound. OK")


@cli.command()
@SERVICE_PATH
@ENV_OPTION
def routes(path: Path, env: str | None) -> None:
    """List the routes of the service in PATH: method, path, operation, handler."""
    service = load_for_command(path, env)
    rows = [
        [operation.method.upper(), operation.path, operation.operation_id or "-", operation.handler or "-"]
        for api in service.apis.values()
        for operation in api.operations
    ]
    rows += _other_routes(service)
    click.echo(_table(rows, ["method", "path", "operation", "handler"]))


def _other_routes(service: Service) -> list[list[str]]:
    """Routes that plugins added at start-up (/docs...), which no spec describes: operation '-'."""
    app = service.app
    assert app is not None
    bound = {f"{api.name}:{op.method}:{op.path}" for api in service.apis.values() for op in api.operations}
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in bound:
            continue
        view = app.view_functions[rule.endpoint]
        handler = f"{view.__module__}.{view.__qualname__}".replace(".<locals>", "")
        if "<lambda>" in handler:
            handler = f"{view.__module__}:{rule.endpoint}"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rows.append([method, rule.rule, "-", handler])
    return rows


@cli.command()
@click.argument("name")
@click.option(
    "--path", "parent", default=".", type=click.Path(path_type=Path), help="Folder to create the service in (default: the current folder)."
)
def new(name: str, parent: Path) -> None:
    """Create the service folder NAME: spec, handlers, config, README, unit and black-box tests."""
    from macaron.scaffold import ScaffoldError, scaffold, tests_install_command

    try:
        root = scaffold(name, parent)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created the service {name} in {root}")
    click.echo(f"  serve it:  macaron serve {root}   (then http://127.0.0.1:8080/v1/hello/you and /docs)")
    install = tests_install_command(missing_only=True)
    click.echo(f"  test it:   {install + ' && ' if install else ''}cd {root} && pytest && pytest testaccept")


@cli.command()
@SERVICE_PATH
@click.option("--dry-run", is_flag=True, help="Print the diff and what needs a decision; change nothing.")
def migrate(path: Path, dry_run: bool) -> None:
    """Move the PyMacaron (1.x or 2.x) service in PATH to macaron, in place. See docs/migrating.md."""
    from macaron.migrate import MigrateError, run

    root = path.resolve()
    try:
        result, diff = run(root, dry_run)
    except MigrateError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run and diff:
        click.echo(diff, nl=False)
    if result.empty:
        click.echo("nothing to migrate: no PyMacaron code, config or generated files left")
    elif not dry_run:
        click.echo(f"migrated: {len(result.writes)} file(s) rewritten, {len(result.renames)} renamed, {len(result.deletes)} deleted; review with 'git diff'")
    for note in result.notes:
        click.echo(f"to do: {note.render(root)}", err=True)


@cli.group()
def image() -> None:
    """Build, run and push the container image of a service (podman, buildah or docker). See docs/deploy.md."""


def _image_error(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@image.command("build")
@SERVICE_PATH
@click.option("--tag", default=None, help="Image name and tag (default: image.tag in macaron.yaml, else NAME:VERSION).")
@click.option("--base", default=None, help="Base image (default: image.base in macaron.yaml, else the slim image of this Python).")
@click.option("--builder", type=click.Choice(["podman", "buildah", "docker"]), default=None, help="Container tool (default: the first installed).")
@click.option("--version", "version", default=None, help="Version to bake in (default: MACARON_VERSION, else 'version' in macaron.yaml).")
@click.option("--push", default=None, metavar="REGISTRY", help="Push the image to REGISTRY (host[:port][/prefix]) once built.")
@click.option("--allow-dirty", is_flag=True, help="Build from a tree with uncommitted changes (the revision label says so).")
@click.option("--no-cache", is_flag=True, help="Make every layer anew (to check that the build is reproducible).")
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
def image_build(
    path: Path,
    tag: str | None,
    base: str | None,
    builder: str | None,
    version: str | None,
    push: str | None,
    allow_dirty: bool,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Build the production image of the service in PATH, from its last commit, reproducibly."""
    from macaron.image import ImageError, build_image

    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    try:
        built = build_image(
            path, tag=tag, base=base, builder=builder, version=version, allow_dirty=allow_dirty, push=push, no_cache=no_cache, progress=say
        )
    except ImageError as exc:
        raise _image_error(exc) from exc
    if as_json:
        click.echo(json.dumps(built.as_dict(), indent=2))
        return
    click.echo(f"{built.image}  id {built.id[:12]}  {built.size / 1e6:.0f} MB  in {built.seconds:.1f} s")


@image.command("base")
@click.option("--builder", type=click.Choice(["podman", "buildah", "docker"]), default=None, help="Container tool (default: the first installed).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image_base(builder: str | None, as_json: bool) -> None:
    """Build (once, then cached) a slim Debian base with Python from Debian's packages: no registry needed."""
    from macaron.image import ImageError, base_image

    try:
        result = base_image(builder=builder, progress=lambda line: click.echo(line, err=True))
    except ImageError as exc:
        raise _image_error(exc) from exc
    click.echo(json.dumps(result, indent=2) if as_json else result["image"])


@image.command("run")
@click.argument("image_name", metavar="IMAGE")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to serve on, on 127.0.0.1.")
@click.option("--env", default=None, help="Config overlay inside the image: macaron.<env>.yaml.")
@click.option("-e", "variables", multiple=True, metavar="VAR[=VALUE]", help="Pass this environment variable (its value here, or VALUE); repeatable.")
@click.option("--builder", type=click.Choice(["podman", "docker"]), default=None, help="Container tool (default: the first installed).")
def image_run(image_name: str, port: int, env: str | None, variables: tuple[str, ...], builder: str | None) -> None:
    """Serve IMAGE on 127.0.0.1:PORT in the foreground; Ctrl-C stops it gracefully."""
    import os

    from macaron.image import ImageError, run_foreground

    environment: dict[str, str] = {"MACARON_ENV": env} if env else {}
    for variable in variables:
        key, sep, value = variable.partition("=")
        if not sep:
            if key not in os.environ:
                raise click.ClickException(f"-e {key}: no such variable in this environment (write -e {key}=VALUE)")
            value = os.environ[key]
        environment[key] = value
    click.echo(f"serving {image_name} on http://127.0.0.1:{port} (Ctrl-C stops it)", err=True)
    try:
        status = run_foreground(image_name, port, environment, builder=builder)
    except ImageError as exc:
        raise _image_error(exc) from exc
    sys.exit(status if status > 0 else 0)


def deploy_targets(manager: MacaronPluginManager) -> dict[str, str]:
    """Every deploy target the plugins name, with the name of the plugin that owns it."""
    owners: dict[str, str] = {}
    for impl in manager.hook.register_deploy_targets.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        named = impl.function() or []
        if not isinstance(named, (list, tuple)) or not all(isinstance(name, str) for name in named):
            raise click.ClickException(f"plugin '{impl.plugin_name}': register_deploy_targets must return a list of names, not {named!r}")
        for target in named:
            if target in owners:
                raise click.ClickException(
                    f"deploy target '{target}' is named by two plugins, '{owners[target]}' and '{impl.plugin_name}': "
                    "uninstall one or block it with MACARON_DISABLE_PLUGINS"
                )
            owners[target] = impl.plugin_name
    return owners


# Options every deploy target takes; a plugin adds its own through the deploy_options hook.
COMMON_DEPLOY_OPTIONS = ("env", "dry_run", "version", "json", "rehearse")
# The names click gives macaron's own parameters of `deploy TARGET` (``--json`` is ``as_json``): a plugin option with one
# of them would reach the command twice.
DEPLOY_PARAMETER_NAMES = ("path", "env", "dry_run", "version", "as_json", "rehearse")


def _target_options(manager: MacaronPluginManager, target: str, plugin: str) -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for answer in manager.hook.deploy_options(target=target):
        if answer is None:
            continue
        if not isinstance(answer, (list, tuple)) or not all(isinstance(param, click.Parameter) for param in answer):
            raise click.ClickException(f"plugin '{plugin}': deploy_options must return a list of click options, not {answer!r}")
        params.extend(answer)
    names = [param.name for param in params]
    for name in names:
        if name in COMMON_DEPLOY_OPTIONS or name in DEPLOY_PARAMETER_NAMES or names.count(name) > 1:
            raise click.ClickException(f"deploy target '{target}': option '{name}' is defined twice (by plugin '{plugin}' or by macaron itself)")
    return params


def _deploy_command(manager: MacaronPluginManager, target: str, plugin: str) -> click.Command:
    def run(path: Path, env: str | None, dry_run: bool, version: str | None, as_json: bool, rehearse: bool, **extra: Any) -> None:
        service = load_for_command(path, env)
        options: dict[str, Any] = {
            "env": env,
            "dry_run": dry_run,
            "version": version or service.version,
            "json": as_json,
            "rehearse": rehearse,
            **extra,
        }
        from macaron.deploying import DeployError

        try:
            summary = manager.hook.on_deploy(target=target, service_path=service.root, config=service.config, options=options)
        except click.ClickException:
            raise
        except DeployError as exc:  # the plugin's own account of what failed and what is live
            raise click.ClickException(f"deploy to '{target}' failed: {exc}") from exc
        except Exception as exc:  # a failed deploy is reported in one line, not a traceback
            raise click.ClickException(f"deploy to '{target}' (plugin '{plugin}') failed: {type(exc).__name__}: {exc}") from exc
        if summary is None:
            raise click.ClickException(f"plugin '{plugin}' names deploy target '{target}' but did not deploy to it (on_deploy returned None)")
        if set(summary) == {"output"} and isinstance(summary["output"], str):  # a document for another tool (kubectl apply)
            click.echo(summary["output"], nl=False)
            return
        if as_json:
            click.echo(json.dumps(summary, indent=2, default=str))
            return
        for key, value in summary.items():
            if key == "steps":  # printed one by one as they ran (macaron.deploying.Pipeline); --json has them
                continue
            click.echo(f"{key}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")

    origin = manager.origins.get(plugin)
    by = (origin.distribution if origin else None) or plugin
    command = click.Command(
        target,
        callback=run,
        help=f"Deploy the service in PATH to {target} (plugin {by}). The service is checked first, as by 'macaron validate'.",
        short_help=f"Deploy to {target} (plugin {by}).",
        params=[
            click.Argument(["path"], default=".", type=click.Path(exists=True, file_okay=False, path_type=Path)),
            click.Option(["--env"], default=None, envvar="MACARON_ENV", help="Config overlay to use: macaron.<env>.yaml."),
            click.Option(["--dry-run"], is_flag=True, help="Check the service and show what would be deployed; change nothing."),
            click.Option(
                ["--version", "version"], default=None, help="Version to deploy (default: MACARON_VERSION, else 'version' in macaron.yaml)."
            ),
            click.Option(["--json", "as_json"], is_flag=True, help="Print the summary as JSON."),
            click.Option(["--rehearse"], is_flag=True, help="Run the whole pipeline against local stand-ins the plugin starts; touch no cloud."),
            *_target_options(manager, target, plugin),
        ],
    )
    return command


class DeployGroup(click.Group):
    """One subcommand per deploy target of the installed plugins, built when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(deploy_targets(pm()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        manager = pm()
        targets = deploy_targets(manager)
        if cmd_name not in targets:
            return None
        return _deploy_command(manager, cmd_name, targets[cmd_name])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        command = self.get_command(ctx, name) if name is not None else None
        if command is None:
            known = ", ".join(self.list_commands(ctx)) or "none is installed"
            raise click.ClickException(f"unknown deploy target '{name}' (known targets: {known}); see 'macaron deploy --list'")
        return name, command, args[1:]


@cli.group(cls=DeployGroup, invoke_without_command=True)
@click.option("--list", "list_targets", is_flag=True, help="List the deploy targets of the installed plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def deploy(ctx: click.Context, list_targets: bool, as_json: bool) -> None:
    """Deploy a service to a target of an installed plugin: macaron deploy TARGET [PATH] [OPTIONS].

    Without TARGET, or with --list, list the targets. 'macaron deploy TARGET --help'
    shows the options of that target, its plugin's included.
    """
    if ctx.invoked_subcommand is not None and not list_targets:
        return
    manager = pm()
    rows: list[dict[str, str]] = []
    for name, plugin in sorted(deploy_targets(manager).items()):
        origin = manager.origins.get(plugin)
        rows.append({"target": name, "plugin": plugin, "distribution": (origin.distribution if origin else None) or "-"})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("No deploy target installed: deploy plugins (macaron-aws, macaron-gke...) add them.")
    else:
        click.echo(_table([list(row.values()) for row in rows], ["target", "plugin", "distribution"]))
    ctx.exit(0)


def main() -> None:
    try:
        manager = pm()
    except PluginLoadError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    manager.hook.register_commands.call_historic(kwargs={"cli": cli})
    cli(prog_name="macaron")


if __name__ == "__main__":  # pragma: no cover
    main()
