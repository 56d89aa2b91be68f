"""``macaron deploy beanstalk`` for real: the CLI, boto3 over HTTP, real images in real containers.

S3, STS and ECR are moto's server; Elastic Beanstalk is macaron_aws.standin, whose environments pull the pushed
image from a registry on 127.0.0.1 and run it with podman; the CLI reaches them through boto3's own endpoint
variables and an HTTP proxy for the CNAMEs, as ``--rehearse`` does. The tests follow one service's life in
order (first deploy, update, a failed gate, a failed launch, rollback, another deploy, clean-up, a cut-off run),
each checking what a user would see.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml

from containers import git, private_storage, registry_free_base
from macaron_aws.rehearse import StandIn, standin

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imaged"
HELLO = ROOT / "examples" / "helloworld"
SECRET = "s3cr3t-" + os.urandom(8).hex()
MACARON = [sys.executable, "-m", "macaron"]
LIVE = "http://imaged.us-east-1.elasticbeanstalk.com"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_storage(tmp_path_factory.mktemp("containers")):
        yield registry_free_base()


@pytest.fixture(scope="module")
def aws(base: str) -> Iterator[StandIn]:
    with standin(health_timeout=30) as stand_in:
        yield stand_in


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def configure(root: Path, **beanstalk: Any) -> None:
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["deploy"]["beanstalk"].update(beanstalk)
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, base: str, aws: StandIn) -> Path:
    root = tmp_path_factory.mktemp("repo") / "imaged"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    spec = root / "apis" / "imaged.yaml"  # the gate's contract tests need not wait for long requests
    spec.write_text(spec.read_text().replace("maximum: 5", "maximum: 0.2"))
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["image"] = {"base": base}
    config["deploy"] = {"beanstalk": {"region": "us-east-1", "registry": f"{aws.registry}/team", "poll": 0.3, "timeout": 90}}
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    git(root, "init", "-q")
    commit(root, "imaged")
    # The first build writes the lock; it is committed, as the build asks.
    done = subprocess.run([*MACARON, "image", "build", str(root), "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    commit(root, "lock")
    return root


def environment(aws: StandIn, **changes: str | None) -> dict[str, str]:
    variables = {**os.environ, **aws.variables, "IMAGED_SECRET": SECRET}
    for name, value in changes.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    return variables


def deploy(service: Path, aws: StandIn, *args: str, **changes: str | None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*MACARON, "deploy", "beanstalk", str(service), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment(aws, **changes),
        timeout=600,
    )
    assert SECRET not in done.stdout + done.stderr, "a secret reached the deploy's output"
    return done


def live_version(aws: StandIn) -> str | None:
    try:
        return str(requests.get(f"{LIVE}/version", proxies={"http": aws.server.proxy_url}, timeout=15).json()["version"])
    except (requests.RequestException, ValueError, KeyError):
        return None


def standing(aws: StandIn) -> dict[str, str]:
    """Environment name -> version of every environment not terminated."""
    return {env.name: env.version for env in aws.server.eb.environments if env.status not in ("Terminated", "Terminating")}


def created(aws: StandIn, name: str) -> int:
    return sum(1 for env in aws.server.eb.environments if env.name == name)


def test_a_missing_secret_is_refused_before_any_aws_call(service: Path, aws: StandIn) -> None:
    calls = list(aws.server.eb.calls)
    done = deploy(service, aws, IMAGED_SECRET=None)
    assert done.returncode != 0
    assert "IMAGED_SECRET listed in env_secrets is not set" in done.stderr  # macaron deploy checks the config first
    assert len(done.stderr.strip().splitlines()[-1]) < 400 and "Traceback" not in done.stderr
    assert aws.server.eb.calls == calls


def test_no_credentials_is_one_clear_line(service: Path, aws: StandIn, tmp_path: Path) -> None:
    calls = list(aws.server.eb.calls)
    done = deploy(
        service,
        aws,
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
    )
    assert done.returncode != 0
    assert "no AWS credentials: set AWS_PROFILE" in done.stderr and "Traceback" not in done.stderr
    assert aws.server.eb.calls == calls


def test_a_dry_run_shows_the_plan_and_calls_nothing(service: Path, aws: StandIn) -> None:
    calls = list(aws.server.eb.calls)
    done = deploy(service, aws, "--dry-run")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["green"] == "imaged-1-2-3" and plan["live_cname"] == "imaged"
    assert plan["environment"]["IMAGED_SECRET"] == "****"
    assert {"Namespace": "aws:elasticbeanstalk:environment:process:default", "OptionName": "HealthCheckPath", "Value": "/ping"} in plan[
        "option_settings"
    ]
    assert aws.server.eb.calls == calls


def test_the_first_deploy_goes_live(service: Path, aws: StandIn) -> None:
    done = deploy(service, aws)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["url"] == LIVE and summary["version"] == "1.2.3" and summary["previous"] is None
    assert [step["step"] for step in summary["steps"]] == ["check", "image", "version", "green", "gate", "live"]
    assert live_version(aws) == "1.2.3"
    assert standing(aws) == {"imaged-1-2-3": "1.2.3"}
    # The secret reached the service through the environment's properties, and nowhere else: not the bundle.
    env = next(env for env in aws.server.eb.environments if env.name == "imaged-1-2-3")
    assert env.settings[("aws:elasticbeanstalk:application:environment", "IMAGED_SECRET")] == SECRET
    s3 = boto3.client("s3", endpoint_url=aws.moto_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    for bucket in s3.list_buckets()["Buckets"]:
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
            assert SECRET.encode() not in body
            if item["Key"].endswith(".zip"):
                with zipfile.ZipFile(io.BytesIO(body)) as bundle:
                    assert bundle.namelist() == ["Dockerrun.aws.json"]


def test_an_update_goes_live_only_after_its_gate(service: Path, aws: StandIn) -> None:
    answers: list[tuple[float, str | None]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            answers.append((time.monotonic(), live_version(aws)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    process = subprocess.Popen(
        [*MACARON, "deploy", "beanstalk", str(service), "--json", "--version", "2.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(aws),
    )
    gate_passed = None
    assert process.stderr is not None
    for line in process.stderr:
        if "gate: done" in line:
            gate_passed = time.monotonic()
    out = process.stdout.read() if process.stdout else ""
    assert process.wait(60) == 0, out
    stop.set()
    watcher.join()
    assert gate_passed is not None
    versions = [version for _, version in answers]
    assert versions[0] == "1.2.3" and versions[-1] == "2.0.0"
    first_new = next(at for at, version in answers if version == "2.0.0")
    assert first_new > gate_passed, "the new version was live before its gate passed"
    assert all(version == "2.0.0" for at, version in answers if at > first_new), "live went back and forth"
    assert json.loads(out)["previous"] == "imaged-1-2-3"
    assert standing(aws) == {"imaged-1-2-3": "1.2.3", "imaged-2-0-0": "2.0.0"}


def test_a_version_failing_its_acceptance_tests_never_goes_live(service: Path, aws: StandIn) -> None:
    done = deploy(service, aws, "--version", "2.1.0-rc1")
    assert done.returncode != 0, done.stderr
    assert "2.1.0-rc1 is not a release" in done.stderr, done.stderr  # the gate's report
    assert "nothing was swapped: imaged-2-0-0 (2.0.0) is still live" in done.stderr, done.stderr
    assert live_version(aws) == "2.0.0"
    assert "imaged-2-1-0-rc1" not in standing(aws)


def test_a_version_that_never_gets_healthy_is_terminated(service: Path, aws: StandIn) -> None:
    configure(service, health_check_path="/not-there", timeout=4)
    commit(service, "a health check path nothing answers")
    try:
        done = deploy(service, aws, "--version", "2.2.0")
    finally:
        configure(service, health_check_path="/ping", timeout=90)
        commit(service, "the health check back on /ping")
    assert done.returncode != 0
    assert "imaged-2-2-0 not Ready and Green after 4 s" in done.stderr
    assert "imaged-2-0-0 (2.0.0) is still live" in done.stderr
    assert live_version(aws) == "2.0.0"
    assert "imaged-2-2-0" not in standing(aws)


def test_rollback_makes_the_previous_version_live_again(service: Path, aws: StandIn) -> None:
    done = deploy(service, aws, "--rollback")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "1.2.3"
    assert live_version(aws) == "1.2.3"


def test_cleanup_keeps_the_live_environment_and_the_one_live_before(service: Path, aws: StandIn) -> None:
    assert deploy(service, aws, "--version", "3.0.0").returncode == 0
    assert live_version(aws) == "3.0.0"
    done = deploy(service, aws, "--cleanup", "--keep", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["terminated"] == ["imaged-2-0-0"]
    assert standing(aws) == {"imaged-3-0-0": "3.0.0", "imaged-1-2-3": "1.2.3"}
    assert live_version(aws) == "3.0.0"


def test_a_run_cut_off_after_green_is_picked_up(service: Path, aws: StandIn) -> None:
    process = subprocess.Popen(
        [*MACARON, "deploy", "beanstalk", str(service), "--json", "--version", "4.0.0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(aws),
    )
    assert process.stderr is not None
    for line in process.stderr:  # with --json, the steps are printed on stderr
        if "green: done" in line:
            process.send_signal(signal.SIGKILL)  # between the green environment and its gate
            break
    process.wait(30)
    assert "imaged-4-0-0" in standing(aws) and live_version(aws) == "3.0.0"
    done = deploy(service, aws, "--version", "4.0.0")
    assert done.returncode == 0, done.stderr
    assert "environment imaged-4-0-0 exists already (an earlier run cut off?): following it" in done.stderr
    assert "version 4.0.0 exists already from this commit: reused" in done.stderr
    assert live_version(aws) == "4.0.0"
    assert created(aws, "imaged-4-0-0") == 1


def test_secrets_as_parameter_store_references(service: Path, aws: StandIn) -> None:
    configure(service, secrets="ssm")
    commit(service, "secrets from Parameter Store")
    ssm = boto3.client("ssm", endpoint_url=aws.moto_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    path = "/macaron/imaged/imaged-5-0-0-rc1/"
    # A version failing its gate takes its parameters with it.
    failed = deploy(service, aws, "--version", "5.0.0-rc1")
    assert failed.returncode != 0 and "5.0.0-rc1 is not a release" in failed.stderr, failed.stderr
    assert ssm.get_parameters_by_path(Path=path, Recursive=True)["Parameters"] == []

    done = deploy(service, aws, "--version", "5.0.0")
    assert done.returncode == 0, done.stderr
    # Live means the container started, and the service refuses to start without IMAGED_SECRET: the host fetched it.
    assert live_version(aws) == "5.0.0"
    env = next(env for env in aws.server.eb.environments if env.name == "imaged-5-0-0")
    assert SECRET not in json.dumps(sorted(env.settings.values()))
    reference = env.settings[("aws:elasticbeanstalk:application:environmentsecrets", "IMAGED_SECRET")]
    assert reference == "arn:aws:ssm:us-east-1:123456789012:parameter/macaron/imaged/imaged-5-0-0/IMAGED_SECRET"
    stored = ssm.get_parameter(Name="/macaron/imaged/imaged-5-0-0/IMAGED_SECRET", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == SECRET


def test_rehearse_on_the_example_service(base: str, tmp_path: Path) -> None:
    root = tmp_path / "helloworld"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    commit(root, "helloworld")
    done = subprocess.run(
        [*MACARON, "deploy", "beanstalk", str(root), "--rehearse", "--json"], capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert [r["round"] for r in summary["rounds"]] == [
        "first deploy of 0.1.0",
        "blue/green update to 0.1.0-rehearsal",
        "rollback",
        "cleanup, keeping 1",
    ]
    assert [r["version"] for r in summary["rounds"][:3]] == ["0.1.0", "0.1.0-rehearsal", "0.1.0"]
    assert summary["beanstalk_calls"] > 10
