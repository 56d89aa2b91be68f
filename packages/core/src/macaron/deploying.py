"""What every deploy target does the same way: check, report each step, gate, follow the live URL, rehearse.

Deploy plugins (macaron-aws, macaron-gke) build their pipelines from these pieces, so that every target
refuses the same things before touching a cloud, prints its steps the same way, runs the same gate and keeps
secrets out of what it prints. Nothing here talks to a cloud.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import requests

from macaron.image import Commit, ImageError, secret_names, service_commit

MASK = "****"


class DeployError(Exception):
    """A deploy stopped; the message says, in one line, what happened and what is live now."""


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    """Prints each step of a deploy as it goes, with its duration, and keeps them for ``--json``.

    Progress goes to stderr when the summary is printed as JSON, so stdout stays one JSON document.
    Every line passes through :meth:`mask` first: a secret value never reaches the terminal or a log.
    """

    def __init__(self, target: str, *, as_json: bool = False, secrets: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.as_json = as_json
        self.secrets: dict[str, str] = dict(secrets or {})
        self.steps: list[Step] = []
        self.started = time.monotonic()

    def mask(self, text: str) -> str:
        for value in sorted(self.secrets.values(), key=len, reverse=True):
            if value:
                text = text.replace(value, MASK)
        return text

    def say(self, line: str) -> None:
        click.echo(self.mask(f"[{self.target}] {line}"), err=self.as_json)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Run one step: ``with pipeline.step("image") as step: step.detail["image"] = ...``."""
        current = Step(name)
        self.steps.append(current)
        since = time.monotonic()
        try:
            yield current
        except BaseException:
            current.ok = False
            raise
        finally:
            current.seconds = round(time.monotonic() - since, 2)
            state = "done" if current.ok else "FAILED"
            shown = ", ".join(f"{key} {value}" for key, value in current.detail.items() if isinstance(value, (str, int, float)))
            self.say(f"{name}: {state}{' (' + shown + ')' if shown else ''} in {current.seconds:.1f} s")

    def summary(self, **fields: Any) -> dict[str, Any]:
        """The deploy's summary (``on_deploy``'s answer): the fields given, the steps, the total time; masked."""
        data = {
            "target": self.target,
            **fields,
            "steps": [{"step": s.name, "seconds": s.seconds, "ok": s.ok, **s.detail} for s in self.steps],
            "seconds": round(time.monotonic() - self.started, 2),
        }
        masked: dict[str, Any] = json.loads(self.mask(json.dumps(data, default=str)))
        return masked


@dataclass
class Checked:
    """What the check step found: the commit to deploy and the secrets to hand to the service."""

    commit: Commit | None
    secrets: dict[str, str]


def check_service(root: Path, env: str | None = None, *, allow_dirty: bool = False, gate: bool = True) -> Checked:
    """The checks every deploy makes before any cloud call.

    ``macaron deploy`` has validated the spec and the config before the plugin is called; this adds: the git
    tree is clean (the image is built from a commit), every ``env_secrets`` variable is set in the deployer's
    environment (a deploy hands each to the service), and, with ``gate``, macaron-unit is installed to run the
    acceptance and contract tests against the new version.
    """
    try:
        commit = service_commit(root, allow_dirty)
        names = secret_names(root, env)
    except ImageError as exc:
        raise DeployError(str(exc)) from exc
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise DeployError(
            f"env_secrets not set in this environment: {', '.join(missing)}; a deploy hands each to the service "
            "(set them, e.g. from your secret store, and run again); nothing was deployed"
        )
    if gate:
        try:
            metadata.distribution("macaron-unit")
        except metadata.PackageNotFoundError:
            raise DeployError(
                "the gate runs the service's acceptance and contract tests with 'macaron test', from macaron-unit: "
                "pip install macaron-unit; nothing was deployed"
            ) from None
    return Checked(commit, {name: os.environ[name] for name in names})


@dataclass
class GateResult:
    passed: bool
    seconds: float
    report: str  # the test run's output, masked, last lines

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines, after every earlier line that names a failure (pytest's and the contract run's)."""
        all_lines = self.report.splitlines()
        head = [line for line in all_lines[:-lines] if "FAILED" in line or "Error:" in line or line.startswith("E   ")]
        return "\n".join([*head, *(["..."] if head else []), *all_lines[-lines:]])


def run_gate(
    url: str,
    root: Path,
    *,
    env: str | None = None,
    secrets: Mapping[str, str] | None = None,
    time_limit: float = 60.0,
    environment: Mapping[str, str] | None = None,
) -> GateResult:
    """Run the service's acceptance tests (testaccept/) and its contract tests against ``url``: ``macaron test --url``.

    It runs in a process of its own, as a user runs it, with the deployer's environment (``environment`` adds
    to it: a proxy, for instance). The output is kept, masked, for the report of a failed gate.
    """
    command = [sys.executable, "-m", "macaron", "test", str(root), "--url", url, "--time-limit", f"{time_limit:g}"]
    if env:
        command += ["--env", env]
    since = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, **(environment or {})}, timeout=time_limit * 3 + 300
    )
    output = done.stdout + done.stderr
    for value in sorted((secrets or {}).values(), key=len, reverse=True):
        if value:
            output = output.replace(value, MASK)
    return GateResult(done.returncode == 0, round(time.monotonic() - since, 2), output)


def served_version(url: str, *, session: requests.Session | None = None, timeout: float = 5.0) -> str | None:
    """The version ``url/version`` answers, or None when nothing answers there."""
    try:
        response = (session or requests).get(f"{url.rstrip('/')}/version", timeout=timeout)
        if response.status_code != 200:
            return None
        answered = response.json().get("version")
        return str(answered) if answered is not None else None
    except (requests.RequestException, ValueError, AttributeError):
        return None


def wait_for_version(
    url: str,
    version: str,
    *,
    timeout: float = 300.0,
    interval: float = 1.0,
    session: requests.Session | None = None,
    progress: Callable[[str], None] | None = None,
) -> float:
    """Poll ``url/version`` until it answers ``version`` (no fixed sleep for DNS or load balancers); the seconds it took."""
    since = time.monotonic()
    deadline = since + timeout
    last: str | None = None
    while True:
        answered = served_version(url, session=session)
        if answered == version:
            return round(time.monotonic() - since, 2)
        if answered != last and progress is not None:
            progress(f"{url} answers version {answered or '(nothing)'}; waiting for {version}")
        last = answered
        if time.monotonic() > deadline:
            raise DeployError(f"{url}/version still answers {answered or 'nothing'} after {timeout:g} s, not {version}")
        time.sleep(interval)


def mask_environment(variables: Mapping[str, str], secret_names: Mapping[str, str] | list[str]) -> dict[str, str]:
    """``variables`` as a dry run shows them: the value of every secret replaced by ****."""
    hidden = set(secret_names)
    return {name: (MASK if name in hidden else value) for name, value in variables.items()}


# -- rehearsing ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def local_registry(folder: Path | None = None, *, timeout: float = 15.0) -> Iterator[str]:
    """A container registry on 127.0.0.1 for a rehearsal (Debian's ``docker-registry``); yields ``127.0.0.1:PORT``."""
    program = shutil.which("docker-registry")
    if program is None:
        raise DeployError("a rehearsal pushes the image to a registry on this machine: install Debian's docker-registry package")
    with contextlib.ExitStack() as stack:
        where = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="macaron-registry-")))
        port = free_port()
        config = where / "registry.yml"
        config.write_text(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {where}/data\nhttp:\n  addr: 127.0.0.1:{port}\n",
            encoding="utf-8",
        )
        process = subprocess.Popen([program, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise DeployError(f"docker-registry did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
