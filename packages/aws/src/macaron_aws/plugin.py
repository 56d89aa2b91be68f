"""macaron-aws's plugin: the deploy target ``beanstalk``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from macaron.config import Config
from macaron.hookspecs import hookimpl

TARGET = "beanstalk"


@hookimpl
def register_deploy_targets() -> list[str]:
    return [TARGET]


@hookimpl
def deploy_options(target: str) -> list[click.Parameter] | None:
    if target != TARGET:
        return None
    return [
        click.Option(["--rollback"], is_flag=True, help="Make the environment live before the current one live again, at once."),
        click.Option(["--cleanup"], is_flag=True, help="Terminate the environments macaron made that are neither live nor kept."),
        click.Option(["--keep"], type=click.IntRange(min=1), default=None, help="With --cleanup: environments kept, the live one included (default 2)."),
        click.Option(["--keep-failed"], is_flag=True, help="Keep a new environment that failed its gate, to look at it (terminate it with --cleanup)."),
    ]


@hookimpl
def on_deploy(target: str, service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any] | None:
    if target != TARGET:
        return None
    if options.get("rehearse"):
        from macaron_aws.rehearse import rehearse

        return rehearse(service_path, config, options)
    from macaron_aws.beanstalk import Beanstalk

    return Beanstalk(service_path, config, options).run()
