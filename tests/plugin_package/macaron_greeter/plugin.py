"""The hooks of macaron-greeter, registered through the entry point ``greeter`` of group ``macaron``.

Everywhere:

* ``macaron greet NAME``: a subcommand (``register_commands``);
* the deploy target ``greeter-folder``, which "deploys" a service by writing its
  release manifest into a folder (``register_deploy_targets``, ``on_deploy``).

In services whose ``macaron.yaml`` has a ``greeter:`` section (so that installing
the plugin changes no other service):

* an ``X-Greeting`` header on the responses of every operation (``wrap_endpoint``);
* a ``user_message`` on every error that has none (``on_error``).

```yaml
greeter:
  greeting: Hello from the greeter     # the X-Greeting header
  user_message: Sorry, try again later  # added to errors
  deploy_dir: releases                  # greeter-folder's folder, relative to the service
```
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from werkzeug.wrappers import Response

from macaron import current_service, hookimpl
from macaron.config import Config
from macaron.spec import Operation

TARGET = "greeter-folder"
DEFAULT_GREETING = "Hello from macaron-greeter"
DEFAULT_USER_MESSAGE = "Something went wrong; the greeter is sorry."


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.argument("name")
    @click.option("--shout", is_flag=True, help="Greet in capitals.")
    def greet(name: str, shout: bool) -> None:
        """Greet NAME (a command of the macaron-greeter plugin)."""
        text = f"Hello, {name}! (from macaron-greeter)"
        click.echo(text.upper() if shout else text)


@hookimpl
def wrap_endpoint(operation: Operation, config: Config) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    if "greeter" not in config:
        return None
    greeting = str(config.section("greeter").get("greeting", DEFAULT_GREETING))

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def greeting_handler(*args: Any, **kwargs: Any) -> Any:
            return with_header(handler(*args, **kwargs), "X-Greeting", greeting)

        return greeting_handler

    return decorator


def with_header(result: Any, name: str, value: str) -> Any:
    """A handler's result with one more response header, whatever shape it has."""
    if isinstance(result, Response):
        result.headers[name] = value
        return result
    status = None
    headers: dict[str, Any] = {}
    if type(result) is tuple:
        if len(result) == 3:
            result, status, given = result
            headers.update(given or {})
        elif len(result) == 2:
            result, status = result
    headers[name] = value
    return result, status, headers


@hookimpl
def on_error(error: dict[str, Any]) -> None:
    try:
        config = current_service().config
    except (RuntimeError, KeyError):  # outside a request of a macaron app
        return
    if "greeter" in config and not error.get("user_message"):
        error["user_message"] = str(config.section("greeter").get("user_message", DEFAULT_USER_MESSAGE))


@hookimpl
def register_deploy_targets() -> list[str]:
    return [TARGET]


@hookimpl
def on_deploy(target: str, service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any] | None:
    if target != TARGET:
        return None
    folder = service_path / str(config.section("greeter").get("deploy_dir", "releases"))
    name = str(config.get("name") or service_path.name)
    version = str(options["version"])
    manifest = folder / f"{name}-{version}.json"
    release = {
        "name": name,
        "version": version,
        "env": options.get("env"),
        "specs": sorted(p.name for p in (service_path / "apis").glob("*") if p.is_file()),
    }
    if not options.get("dry_run"):
        folder.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed, so a failed deploy leaves the previous manifest as it was.
        partial = manifest.with_name(manifest.name + ".partial")
        partial.write_text(json.dumps(release, indent=2))
        os.replace(partial, manifest)
    return {"target": TARGET, "url": manifest.as_uri(), "version": version, "dry_run": bool(options.get("dry_run"))}
