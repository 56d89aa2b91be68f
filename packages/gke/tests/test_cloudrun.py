"""``macaron deploy cloudrun`` for real: the CLI, the google-cloud-run v2 client over HTTP, real images in real containers.

Cloud Run is macaron_gke.cloudrun_standin (the Admin API v2 REST surface, its revisions running the pushed image
with podman, the service and tag URLs routed by the traffic split through its proxy); the image goes to a registry
on 127.0.0.1; the CLI finds both through the variables a user would set (CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN,
GOOGLE_APPLICATION_CREDENTIALS, HTTP_PROXY), as ``--rehearse`` does. The tests follow one service's life in order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from containers import git, private_storage, registry_free_base
from macaron_gke.cloudrun_standin import StandIn, standin

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imaged"
HELLO = ROOT / "examples" / "helloworld"
SECRET = "s3cr3t-" + os.urandom(8).hex()
MACARON = [sys.executable, "-m", "macaron"]
SERVICE = "projects/team/locations/europe-west1/services/imaged"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_storage(tmp_path_factory.mktemp("containers")):
        yield registry_free_base()


@pytest.fixture(scope="module")
def cloud(base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    folder = tmp_path_factory.mktemp("cloudrun")
    with standin(str(folder), project="team", secrets={"imaged-secret": SECRET}, ready_timeout=90) as stand_in:  # a loaded machine starts containers slowly
        yield stand_in


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def configure(root: Path, **cloudrun: Any) -> None:
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["deploy"]["cloudrun"].update(cloudrun)
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, base: str, cloud: StandIn) -> Path:
    root = tmp_path_factory.mktemp("repo") / "imaged"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    spec = root / "apis" / "imaged.yaml"  # the gate's contract tests need not wait for long requests
    spec.write_text(spec.read_text().replace("maximum: 5", "maximum: 0.2"))
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["image"] = {"base": base}
    config["deploy"] = {
        "cloudrun": {
            "region": "europe-west1",
            "registry": f"{cloud.registry}/team",
            "secrets": {"IMAGED_SECRET": "imaged-secret"},
            "memory": "256Mi",
            "timeout": 90,
            "canary_probes": 5,
        }
    }
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    git(root, "init", "-q")
    commit(root, "imaged")
    done = subprocess.run([*MACARON, "image", "build", str(root), "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    commit(root, "lock")
    return root


def deploy(service: Path, cloud: StandIn, *args: str, **changes: str | None) -> subprocess.CompletedProcess[str]:
    variables = {**os.environ, **cloud.variables, "IMAGED_SECRET": SECRET}
    for name, value in changes.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    done = subprocess.run(
        [*MACARON, "deploy", "cloudrun", str(service), "--json", *args], capture_output=True, text=True, check=False, env=variables, timeout=600
    )
    assert SECRET not in done.stdout + done.stderr, "a secret reached the deploy's output"
    return done


def served(cloud: StandIn, url: str | None = None) -> str | None:
    url = url or f"http://{cloud.server.run.host(SERVICE)}"
    try:
        return str(requests.get(f"{url}/version", proxies={"http": cloud.server.proxy_url}, timeout=15).json()["version"])
    except (requests.RequestException, ValueError, KeyError):
        return None


def traffic(cloud: StandIn) -> dict[str, int]:
    service = cloud.server.run.services[SERVICE]
    return {t.revision: t.percent for t in service.traffic_statuses if t.percent}


def test_a_missing_secret_is_refused_before_any_api_call(service: Path, cloud: StandIn) -> None:
    calls = list(cloud.server.run.calls)
    done = deploy(service, cloud, IMAGED_SECRET=None)
    assert done.returncode != 0
    assert "IMAGED_SECRET" in done.stderr and "Traceback" not in done.stderr
    assert cloud.server.run.calls == calls


def test_no_credentials_is_one_clear_line(service: Path, cloud: StandIn, tmp_path: Path) -> None:
    calls = list(cloud.server.run.calls)
    done = deploy(service, cloud, GOOGLE_APPLICATION_CREDENTIALS=None, CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path), NO_GCE_CHECK="true")
    assert done.returncode != 0
    assert "no Google credentials: run 'gcloud auth application-default login'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()[-1]) < 400
    assert cloud.server.run.calls == calls


def test_a_dry_run_shows_the_plan_without_secret_values(service: Path, cloud: StandIn) -> None:
    calls = list(cloud.server.run.calls)
    done = deploy(service, cloud, "--dry-run", GOOGLE_APPLICATION_CREDENTIALS=None)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["service"] == SERVICE and plan["revision"].startswith("imaged-1-2-3-") and plan["tag"] == "v-1-2-3"
    assert plan["environment"]["IMAGED_SECRET"] == "****"
    env = {e["name"]: e for e in plan["template"]["containers"][0]["env"]}
    assert env["IMAGED_SECRET"]["value_source"]["secret_key_ref"] == {"secret": "imaged-secret", "version": "latest"}
    assert plan["template"]["containers"][0]["resources"]["limits"]["memory"] == "256Mi"
    assert cloud.server.run.calls == calls


def test_the_first_deploy_serves(service: Path, cloud: StandIn) -> None:
    done = deploy(service, cloud)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [step["step"] for step in summary["steps"]] == ["check", "image", "revision", "gate", "traffic"]
    assert summary["version"] == "1.2.3" and summary["previous"] is None
    assert served(cloud) == "1.2.3"
    revision = cloud.server.run.revisions[f"{SERVICE}/revisions/{summary['revision']}"]
    env = {e.name: e for e in revision.resource.containers[0].env}
    assert env["IMAGED_SECRET"].value == "" and env["IMAGED_SECRET"].value_source.secret_key_ref.secret == "imaged-secret"
    assert revision.environment["IMAGED_SECRET"] == SECRET  # resolved by "Cloud Run", from Secret Manager


def test_an_update_gets_traffic_only_after_its_gate(service: Path, cloud: StandIn) -> None:
    logged = len(cloud.server.run.traffic_log)
    done = deploy(service, cloud, "--version", "2.0.0")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert served(cloud) == "2.0.0" and served(cloud, summary["tag_url"]) == "2.0.0"
    splits = [dict((r, p) for r, p, _ in split) for _, split in cloud.server.run.traffic_log[logged:]]
    assert splits[0] == {summary["previous"]: 100, summary["revision"]: 0}  # the new revision first had no traffic
    assert splits[-1] == {summary["revision"]: 100}


def test_a_version_failing_its_acceptance_tests_gets_no_traffic(service: Path, cloud: StandIn) -> None:
    before = traffic(cloud)
    done = deploy(service, cloud, "--version", "2.1.0-rc1")
    assert done.returncode != 0
    assert "2.1.0-rc1 is not a release" in done.stderr, done.stderr
    assert "no traffic moved" in done.stderr
    assert traffic(cloud) == before and served(cloud) == "2.0.0"


def test_a_revision_that_never_gets_ready_gets_no_traffic(service: Path, cloud: StandIn) -> None:
    before = traffic(cloud)
    configure(service, health_check_path="/not-there", timeout=5)
    commit(service, "a probe path nothing answers")
    try:
        done = deploy(service, cloud, "--version", "2.2.0")
    finally:
        configure(service, health_check_path="/ping", timeout=90)
        commit(service, "the probe back on /ping")
    assert done.returncode != 0
    assert "not done after 5 s" in done.stderr and "no traffic moved" in done.stderr, done.stderr
    assert traffic(cloud) == before and served(cloud) == "2.0.0"


def test_rollback_gives_the_traffic_back(service: Path, cloud: StandIn) -> None:
    done = deploy(service, cloud, "--rollback")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "1.2.3"
    assert served(cloud) == "1.2.3"


def test_canary_steps_in_order(service: Path, cloud: StandIn) -> None:
    logged = len(cloud.server.run.traffic_log)
    done = deploy(service, cloud, "--version", "3.0.0", "--canary", "10,50,100")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    new = summary["revision"]
    percents = [dict((r, p) for r, p, _ in split).get(new) for _, split in cloud.server.run.traffic_log[logged:]]
    assert percents == [0, 10, 50, 100]
    assert "error rate 0%" in done.stderr
    assert served(cloud) == "3.0.0"


def test_rehearse_on_the_example_service(base: str, tmp_path: Path) -> None:
    root = tmp_path / "helloworld"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    commit(root, "helloworld")
    done = subprocess.run([*MACARON, "deploy", "cloudrun", str(root), "--rehearse", "--json"], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert [r["version"] for r in summary["rounds"]] == ["0.1.0", "0.1.0-rehearsal", "0.1.0"]
    assert summary["cloudrun_calls"] > 10


def test_every_setting_is_documented_in_deploy_md() -> None:
    from macaron_gke.cloudrun import DOCUMENTED, CloudRunSettings

    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("### deploy.cloudrun in macaron.yaml") :]
    for name in DOCUMENTED:
        assert f"`{name}`" in section, f"deploy.cloudrun.{name} is not in docs/deploy.md"
    assert set(DOCUMENTED) == set(CloudRunSettings.__dataclass_fields__)


def test_canary_steps_are_checked() -> None:
    from macaron.deploying import DeployError
    from macaron_gke.cloudrun import parse_canary

    assert parse_canary("10,50,100") == [10, 50, 100] and parse_canary(None) == [100]
    for wrong in ("50,10,100", "10,50", "0,100", "ten"):
        with pytest.raises(DeployError, match="--canary"):
            parse_canary(wrong)
