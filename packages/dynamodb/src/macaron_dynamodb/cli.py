"""``macaron dynamodb ...``: manage the tables of a service's persisted models."""

from __future__ import annotations

from pathlib import Path

import click

from macaron.cli import ENV_OPTION, SERVICE_PATH, load_for_command
from macaron_dynamodb.errors import DynamoDBError
from macaron_dynamodb.persistence import Persistent, Table
from macaron_dynamodb.tables import TableMismatch, create_tables


def service_tables(path: Path, env: str | None) -> list[Table]:
    """The tables of every persisted model of the service in ``path``, loaded as the server loads it, without its handlers."""
    service = load_for_command(path, env, bind=False)
    return [cls._table for models in service.models.values() for cls in models if issubclass(cls, Persistent)]


@click.group()
def dynamodb() -> None:
    """DynamoDB tables of the models a service persists (x-persist)."""


@dynamodb.command("create-tables")
@SERVICE_PATH
@ENV_OPTION
@click.option("--wait", is_flag=True, help="Return once every table (and index) is ACTIVE.")
@click.option("--timeout", default=300.0, show_default=True, type=float, help="Seconds to wait with --wait.")
def create_tables_command(path: Path, env: str | None, wait: bool, timeout: float) -> None:
    """Create the tables the specs of the service in PATH declare; existing tables are checked, not changed."""
    tables = service_tables(path, env)
    if not tables:
        click.echo("no definition is marked x-persist: nothing to create")
        return
    try:
        for line in create_tables(tables, wait=wait, timeout=timeout):
            click.echo(line)
    except TableMismatch as exc:
        raise click.ClickException(str(exc)) from exc
    except DynamoDBError as exc:
        raise click.ClickException(exc.detail) from exc
    except TimeoutError as exc:
        raise click.ClickException(f"{exc} after {timeout:g} s") from exc
