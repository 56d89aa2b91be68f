"""``macaron test``: acceptance and contract tests of a service, against a server it starts or a URL."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click


@click.command("test", context_settings={"ignore_unknown_options": True})
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--acceptance", is_flag=True, help="Run the service's testaccept/ (pytest) against the server.")
@click.option("--contract", is_flag=True, help="Generate requests from the served specs (schemathesis) and check every response.")
@click.option("--url", default=None, envvar="MACARON_TEST_URL", help="Test the server at this URL instead of serving PATH under gunicorn.")
@click.option("--image", default=None, help="Test a container of this image (macaron image build) on a free port instead of serving PATH.")
@click.option("--env", default=None, envvar="MACARON_ENV", help="Config overlay macaron.<env>.yaml.")
@click.option("--token", default=None, envvar="MACARON_TEST_TOKEN", help="Token to send instead of one issued from the config.")
@click.option("--max-examples", default=25, show_default=True, type=click.IntRange(min=1), help="Contract: requests per operation and round.")
@click.option("--time-limit", default=60.0, show_default=True, type=click.FloatRange(min=1), help="Contract: seconds for the whole run.")
@click.option("--request-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1), help="Contract: seconds per request.")
@click.option("--seed", default=None, type=int, help="Contract: random seed, to replay a run.")
@click.option("--positive-only", is_flag=True, help="Contract: send valid requests only.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(
    path: Path,
    acceptance: bool,
    contract: bool,
    url: str | None,
    image: str | None,
    env: str | None,
    token: str | None,
    max_examples: int,
    time_limit: float,
    request_timeout: float,
    seed: int | None,
    positive_only: bool,
    pytest_args: tuple[str, ...],
) -> None:
    """Test the service in PATH (default: the current folder) over HTTP.

    With neither --acceptance nor --contract, runs both. Without --url, serves PATH
    under gunicorn on a free 127.0.0.1 port for the run; with --image, runs a container
    of that image there instead. Arguments after PATH go to
    pytest (acceptance). Exits non-zero when a test fails.
    """
    from macaron_unit.acceptance import AcceptanceError, acceptance_folder, run_acceptance
    from macaron_unit.contract import ContractError, format_report, run_contract
    from macaron_unit.server import ServerStartError, ServiceServer, is_service

    path = path.resolve()
    both = not acceptance and not contract
    if not is_service(path):
        raise click.ClickException(f"{path}: not a macaron service (no macaron.yaml)")
    if acceptance:
        try:
            acceptance_folder(path)
        except AcceptanceError as exc:
            raise click.ClickException(str(exc)) from exc
    run_acceptance_tests = acceptance or (both and (path / "testaccept").is_dir())
    if image is not None and url is not None:
        raise click.ClickException("--image and --url both name the server to test: give one")
    failed = False
    server: ServiceServer | None = None
    container = None
    with ExitStack() as stack:
        if image is not None:
            container = _start_container(image, path, env)
            stack.callback(container.stop)
            url = container.url
            click.echo(f"macaron test: testing a container of {image} at {url}")
        elif url is None:
            server = ServiceServer(path, env)
            try:
                url = server.start()
            except ServerStartError as exc:
                raise click.ClickException(str(exc)) from exc
            stack.callback(server.stop)
            click.echo(f"macaron test: serving {path} under gunicorn at {url}")
        else:
            url = url.rstrip("/")
            click.echo(f"macaron test: testing {url}")

        if run_acceptance_tests:
            click.echo(f"macaron test: acceptance tests in {path / 'testaccept'}")
            sys.stdout.flush()
            status = run_acceptance(path, url, env=env, token=token, pytest_args=pytest_args)
            if status != 0:
                click.echo(f"macaron test: acceptance tests FAILED (pytest exit status {status})", err=True)
                failed = True
        elif both:
            click.echo(f"macaron test: no {path / 'testaccept'}, no acceptance tests to run")

        if contract or both:
            if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
                # Hypothesis keeps caches (seconds of parsing saved per run) in ./.hypothesis: not in the user's folder.
                cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "macaron" / "hypothesis"
                os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(cache)
            contract_token = token or _config_token(path, env)
            click.echo(f"macaron test: contract tests (at most {max_examples} requests per operation and round, {time_limit:g} s)")
            try:
                report = run_contract(
                    path,
                    url,
                    env=env,
                    max_examples=max_examples,
                    time_limit=time_limit,
                    request_timeout=request_timeout,
                    seed=seed,
                    token=contract_token,
                    negative=not positive_only,
                    progress=lambda result: click.echo(f"  {result.status}  {result.label}  [{result.requests} requests]"),
                )
            except ContractError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(format_report(report))
            if not report.ok:
                failed = True
        if failed and (server is not None or container is not None):
            logged = server.log_tail(60).strip() if server is not None else "\n".join(container.logs().splitlines()[-60:]) if container else ""
            if logged:
                click.echo(f"\nmacaron test: the server's log (last lines):\n{logged}", err=True)
    if failed:
        sys.exit(1)


def _start_container(image: str, path: Path, env: str | None) -> Any:
    from macaron.image import ImageError, run_image, secret_names
    from macaron_unit.server import free_port

    # The container gets the service's env_secrets from this environment, as a deploy passes them; nothing else.
    try:
        names = secret_names(path, env)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise click.ClickException(f"{path}: environment variable(s) {', '.join(missing)} listed in env_secrets not set: the container needs them")
    environment = {name: os.environ[name] for name in names}
    if env:
        environment["MACARON_ENV"] = env
    try:
        return run_image(image, free_port(), environment)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc


def _config_token(path: Path, env: str | None) -> str | None:
    """A token for the contract run when the service has JWT settings, so secured operations reach their handlers."""
    from macaron.config import ConfigError, load_config

    try:
        config = load_config(path, env)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not config.get("jwt_secret"):
        return None
    from macaron_unit.auth import generate_test_token
    from macaron_unit.contract import ContractError, security_scopes

    try:
        scopes = security_scopes(path, env)
    except ContractError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        # Every scope the specs require, so a scoped operation is tested behind its check, not stopped by it.
        return generate_test_token("macaron-contract-test", scopes=scopes or None, service=path, env=env)
    except Exception as exc:  # a broken JWT setting: say so, then test without token
        click.echo(f"macaron test: cannot issue a token from {path}'s config ({exc}); contract requests go without one", err=True)
        return None
