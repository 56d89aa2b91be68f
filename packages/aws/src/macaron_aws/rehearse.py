"""``macaron deploy beanstalk --rehearse``: the whole pipeline on this machine, against local stand-ins.

The deploy code runs unchanged; only boto3's own configuration points elsewhere, as it would for any boto3
program: ``AWS_ENDPOINT_URL_<SERVICE>`` sends S3, STS, ECR and SSM to moto's server and Elastic Beanstalk to
:mod:`macaron_aws.standin`, whose environments pull the pushed image from a registry on 127.0.0.1 and really
run it; ``HTTP_PROXY`` lets the gate and the live check reach the environments' CNAMEs. The tests of
macaron-aws use the same set-up through :func:`standin`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3

from macaron.config import Config
from macaron.deploying import DeployError, Pipeline, free_port, local_registry
from macaron.image import ImageError, RunningContainer, base_image, default_base, find_tool, pull_image, run_image
from macaron_aws.beanstalk import Beanstalk
from macaron_aws.settings import load_settings
from macaron_aws.standin import BeanstalkServer

REGION = "us-east-1"


@dataclass
class StandIn:
    """What a rehearsal runs against, and the environment variables that point boto3 and HTTP clients at it."""

    moto_url: str
    registry: str
    server: BeanstalkServer
    variables: dict[str, str]


def launch(image: str, port: int, environment: dict[str, str]) -> RunningContainer:
    """Start an environment's host as Elastic Beanstalk does: pull the bundle's image, run it."""
    pull_image(image)
    return run_image(image, port, environment, wait=False)


@contextlib.contextmanager
def standin(*, region: str = REGION, health_timeout: float = 60.0) -> Iterator[StandIn]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise DeployError("a rehearsal runs moto's server for S3, STS and ECR: pip install 'macaron-aws[rehearse]'") from None
    # moto's server logs every request through werkzeug at INFO: the rehearsal prints its own steps.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    try:
        moto_url = f"http://127.0.0.1:{moto._port}"
        with local_registry() as registry:
            keys = {"endpoint_url": moto_url, "region_name": region, "aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}
            s3, ssm = boto3.client("s3", **keys), boto3.client("ssm", **keys)
            with BeanstalkServer(s3, launch, region=region, health_timeout=health_timeout, ssm=ssm).running() as server:
                variables = {
                    "AWS_ENDPOINT_URL_S3": moto_url,
                    "AWS_ENDPOINT_URL_STS": moto_url,
                    "AWS_ENDPOINT_URL_ECR": moto_url,
                    "AWS_ENDPOINT_URL_SSM": moto_url,
                    "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK": server.endpoint_url,
                    "AWS_ACCESS_KEY_ID": "rehearsal",
                    "AWS_SECRET_ACCESS_KEY": "rehearsal",
                    "AWS_REGION": region,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    "HTTP_PROXY": server.proxy_url,
                    "http_proxy": server.proxy_url,
                    "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost",
                }
                yield StandIn(moto_url, registry, server, variables)
    finally:
        moto.stop()


@contextlib.contextmanager
def environment(variables: Mapping[str, str], *, unset: tuple[str, ...] = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")) -> Iterator[None]:
    """``variables`` set in this process for the block, ``unset`` removed: a rehearsal never reaches a real account."""
    saved = {name: os.environ.get(name) for name in (*variables, *unset)}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def rehearsal_base(config: Config, say: Any) -> str:
    """The configured base if it is here, else the registry-free base of ``macaron image base``."""
    image = config.section("image")
    base = str(image.get("base") or default_base())
    tool = find_tool(image.get("builder"))
    if tool.exists(base):
        return base
    say(f"the base {base} is not in {tool.name}'s storage: using 'macaron image base' (cached after the first time)")
    try:
        return str(base_image(builder=image.get("builder"), progress=say)["image"])
    except ImageError as exc:
        raise DeployError(str(exc)) from exc


def rehearse(root: Path, config: Config, options: dict[str, Any]) -> dict[str, Any]:
    """Four rounds, as a service lives: a first deploy, a blue/green update, a rollback, a clean-up."""
    version = str(options.get("version") or config.get("version") or "local")
    update = f"{version}-rehearsal"
    pipeline = Pipeline("beanstalk", as_json=bool(options.get("json")))
    settings = load_settings(config, str(config.get("name") or root.name))
    rounds: list[dict[str, Any]] = []
    base = rehearsal_base(config, pipeline.say)  # before the proxy is set: debootstrap fetches from Debian's mirror
    with standin() as stand_in, environment(stand_in.variables):
        settings = replace(settings, region=REGION, registry=f"{stand_in.registry}/rehearsal", bucket=None, poll=0.3, timeout=min(settings.timeout, 180.0))

        def run(label: str, **extra: Any) -> dict[str, Any]:
            pipeline.say(f"rehearsal: {label}")
            beanstalk = Beanstalk(root, config, {**options, "dry_run": False, **extra}, settings=settings, pipeline=pipeline, base=base)
            summary = beanstalk.run()
            rounds.append({"round": label, "url": summary.get("url"), "version": summary.get("version")})
            return summary

        run(f"first deploy of {version}", version=version)
        run(f"blue/green update to {update}", version=update)
        run("rollback", rollback=True, version=update)
        last = run("cleanup, keeping 1", cleanup=True, keep=1)
        calls = len(stand_in.server.eb.calls)
    return pipeline.summary(url=last.get("url"), rehearsal=True, rounds=rounds, beanstalk_calls=calls)
