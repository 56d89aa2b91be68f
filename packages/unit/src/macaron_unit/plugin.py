"""macaron plugin (entry point group ``macaron``): adds the ``macaron test`` command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from macaron import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from macaron_unit.command import test

    cli.add_command(test)
