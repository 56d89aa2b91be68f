"""The hooks a macaron plugin can implement.

Every hook here is documented in docs/plugins.md with its exact signature; a test
keeps the two in step. A plugin implements any subset of a hook's arguments:

    from macaron import hookimpl

    @hookimpl
    def on_error(error):
        error["user_message"] = "Sorry, something went wrong."

Calling conventions, chosen per hook:

* ``firstresult`` hooks pick one implementation: the first that returns something
  other than None wins and the others are not called ("who handles this?").
* The other hooks call every implementation; their results, if any, are combined
  as each docstring says.
* ``historic`` hooks also reach plugins registered after the call was made, so a
  plugin registered late still gets its CLI commands added.

Implementations run last-registered first (pluggy's order), unless they ask for
``tryfirst=True`` or ``trylast=True``. The built-ins register before entry-point
plugins, so a third-party plugin runs before them and can override a built-in in
a firstresult hook.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Flask

    from macaron.config import Config
    from macaron.spec import Api, Operation

hookspec = pluggy.HookspecMarker("macaron")
hookimpl = pluggy.HookimplMarker("macaron")


@hookspec(firstresult=True)
def load_spec(path: Path, config: Config) -> Api | None:
    """Load the API spec in file ``path`` into macaron's own view of an API.

    Called at start-up once per spec file the service serves (``apis/*.yaml``,
    ``*.yml`` and ``*.json``, then the files of ``register_apis``). ``config`` is
    the service's configuration.

    firstresult: return an :class:`macaron.spec.Api` if this plugin understands
    the file (the built-in loaders, which run last, take Swagger 2.0 and OpenAPI
    3.0/3.1); return None to let the next plugin try. Raise :class:`macaron.spec.SpecError` when the file is yours but
    broken: the message names the file, the JSON path and the operation. When no
    plugin returns an Api, start-up stops with an error naming the file.
    """


@hookspec
def register_apis(config: Config) -> list[Path] | None:
    """Add spec files that the service serves besides its own ``apis/`` folder.

    Called at start-up, once. All implementations are called; every returned list
    of paths is loaded through ``load_spec`` like the service's own specs and its
    operations are bound like user operations. The built-in ``/ping`` and
    ``/version`` come this way.
    """


@hookspec
def wrap_endpoint(
    handler: Callable[..., Any], operation: Operation, config: Config
) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    """Wrap the handler of one operation.

    Called at start-up, once per bound operation, after ``x-decorate-server`` has
    been applied. ``handler`` is the callable as it stands; ``operation`` is the
    operation's metadata (api, method, path, parameters, responses, extensions).

    All implementations are called; each may return a decorator (a callable that
    takes a handler and returns a handler) or None. The decorators are applied in
    the order the results come back, so the first result ends up innermost. A
    decorator runs on every request after validation, with the handler's own
    arguments: keep it cheap.
    """


@hookspec
def on_error(error: dict[str, Any], exception: BaseException | None, operation: Operation | None) -> None:
    """See, and decorate, every error response before it is sent.

    Called for every non-2xx response macaron itself builds: validation errors,
    404, 405, 413, 415, a raised :class:`macaron.MacaronException`, and crashes.
    ``error`` is the full Error body (``status``, ``error``,
    ``error_description``, ``error_id``, maybe ``user_message``, ``request_id``,
    ``errors``); an implementation may change its values in place, except
    ``status``. What is sent is that body with the fields the operation's declared
    schema has (docs/operations.md, "Error bodies").
    ``exception`` is what was raised, or None; ``operation`` is the operation
    being served, or None when no route matched.

    All implementations are called; return values are ignored. An exception
    raised by an implementation is logged and does not change the response.
    """


@hookspec
def on_report(report: dict[str, Any]) -> None:
    """Send a crash, error or slow-call report somewhere (an error tracker, a chat, a queue).

    Called once per report: for every 5xx response (``is_fatal`` true), every
    :func:`macaron.reporting.report_error` call and every call slower than its
    threshold. ``report`` is the dict described in docs/operations.md (title,
    error_id, is_fatal, time, service, request, user, response, exception, data);
    do not change it. It runs in the thread of the request, after the response is
    built: hand slow work to a queue or a thread.

    All implementations are called, as well as the ``error_reporter`` callables of
    the config; return values are ignored. An implementation that raises is
    logged and the others still run; the response is never changed.
    """


@hookspec(firstresult=True)
def persist_model(model: type, definition: dict[str, Any], api: Api, config: Config) -> bool | None:
    """Give persistence to the model class of a definition marked ``x-persist``.

    Called at start-up once per such definition. ``model`` is the generated model
    class, ``definition`` its schema with the ``x-persist`` value in it, ``api``
    the Api it belongs to (its file, and the definitions its ``$ref`` point to),
    ``config`` the service configuration.

    firstresult: the backend that takes the model adds its methods (``save``,
    ``load``...) to the class and returns True. When no plugin takes it, start-up
    stops with an error naming the definition.
    """


@hookspec
def startup(app: Flask, config: Config) -> None:
    """Finish the Flask app once every route is bound.

    Called at start-up, once, at the end of :func:`macaron.create_app`. Use it to
    add routes that are not described by a spec, middleware or Flask settings.
    All implementations are called; return values are ignored.
    """


@hookspec(historic=True)
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``macaron`` command line.

    Called once when the CLI starts. ``cli`` is the top-level click group: call
    ``cli.add_command(...)`` or decorate functions with ``@cli.command()``.
    historic: a plugin registered after the CLI was built still gets called.
    """


@hookspec
def register_deploy_targets() -> list[str] | None:
    """Name the deploy targets this plugin handles.

    Called when ``macaron deploy`` lists or checks its targets. All
    implementations are called and their lists joined; a target named by two
    plugins is an error.
    """


@hookspec
def deploy_options(target: str) -> list[click.Parameter] | None:
    """Add command-line options to ``macaron deploy TARGET``.

    Called when ``macaron deploy TARGET`` is built, for the one target the user
    named. The plugin that owns ``target`` returns a list of ``click.Option``
    (``--rollback``, ``--canary``...); others return None. Each value reaches
    :func:`on_deploy` in ``options`` under the option's parameter name. An
    option named like a common one (``env``, ``dry_run``, ``version``,
    ``json``, ``rehearse``) or defined twice is an error.
    """


@hookspec(firstresult=True)
def on_deploy(target: str, service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any] | None:
    """Deploy a service to one target.

    Called by ``macaron deploy TARGET [PATH]``. ``target`` is the name the user
    gave, ``service_path`` the service folder, ``config`` its configuration and
    ``options`` the deploy options: those shared by every target, ``env`` (the
    overlay, or None), ``dry_run`` (check and report, change nothing),
    ``version`` (the version to deploy), ``json`` (the user asked for JSON:
    write nothing else to stdout) and ``rehearse`` (run the whole pipeline
    against local stand-ins the plugin starts itself; raise if the target
    cannot rehearse), then those the plugin added with :func:`deploy_options`.

    firstresult: the plugin that owns ``target`` deploys and returns a summary
    dict (at least ``{"target": ..., "url": ...}``; one that is only ``{"output": text}`` is printed as that
    text alone, a document for another tool); others return None. A deploy
    must be all or nothing: on failure raise, and leave what was live untouched.
    """
