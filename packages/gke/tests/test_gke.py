"""``macaron deploy gke`` through the CLI: the settings, the objects of --dry-run, valid for the configured Kubernetes.

The dry run needs no cluster and no credentials: it prints what a deploy would apply, ready for ``kubectl apply``,
and ``kubernetes-validate --strict`` (macaron-gke's test extra) checks it for the ``kubernetes_version`` set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from containers import git

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imaged"
SECRET = "s3cr3t-" + os.urandom(8).hex()
MACARON = [sys.executable, "-m", "macaron"]


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def configure(root: Path, **gke: Any) -> None:
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config.setdefault("deploy", {}).setdefault("gke", {}).update(gke)
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))


def gke(root: Path, *args: str, **changes: str | None) -> subprocess.CompletedProcess[str]:
    variables = {**os.environ, "IMAGED_SECRET": SECRET}
    for name, value in changes.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    done = subprocess.run([*MACARON, "deploy", "gke", str(root), *args], capture_output=True, text=True, check=False, env=variables, timeout=600)
    assert SECRET not in done.stdout + done.stderr, "a secret reached the deploy's output"
    return done


@pytest.fixture()
def fresh(tmp_path: Path) -> Path:
    """The imaged service in a git repository of its own, with no deploy.gke section."""
    root = tmp_path / "imaged"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    commit(root, "imaged")
    return root


def validate(manifest: Path, version: str) -> str:
    program = Path(sys.executable).with_name("kubernetes-validate")
    done = subprocess.run([str(program), "--strict", "-k", f"{version}.0", str(manifest)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_dry_run_yaml_is_valid_for_the_configured_version_and_free_of_secret_values(fresh: Path, tmp_path: Path) -> None:
    configure(fresh, kubernetes_version="1.30", replicas=3, min_replicas=2, max_replicas=6, cpu_request="100m", environment={"COLOR": "blue"})
    commit(fresh, "settings")
    done = gke(fresh, "--dry-run", "-o", "yaml", KUBECONFIG=str(tmp_path / "none"))
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "imaged.yaml"
    manifest.write_text(done.stdout)
    report = validate(manifest, "1.30")
    assert "passed for resource deployment/imaged" in report
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert [d["kind"] for d in documents] == ["Namespace", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert "Secret" not in [d["kind"] for d in documents]
    deployment = documents[2]
    spec = deployment["spec"]
    assert spec["replicas"] == 3 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["IMAGED_SECRET"] == {"name": "IMAGED_SECRET", "valueFrom": {"secretKeyRef": {"name": "imaged-env-secrets", "key": "IMAGED_SECRET"}}}
    assert env["MACARON_VERSION"]["value"] == "1.2.3" and env["COLOR"]["value"] == "blue"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/ping"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert documents[3]["spec"]["minReplicas"] == 2 and documents[3]["spec"]["maxReplicas"] == 6
    assert "imaged-env-secrets" in done.stdout.splitlines()[1]  # the comment says where the secret is


def test_dry_run_with_a_host_adds_the_ingress_its_certificate_and_health_check(fresh: Path, tmp_path: Path) -> None:
    configure(fresh, host="api.example.com", namespace="shop", name="imaged-api")
    commit(fresh, "host")
    done = gke(fresh, "--dry-run", "-o", "yaml")
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "imaged.yaml"
    manifest.write_text(done.stdout)
    validate(manifest, "1.31")
    documents = {d["kind"]: d for d in yaml.safe_load_all(done.stdout) if d}
    assert documents["Namespace"]["metadata"]["name"] == "shop" and documents["Deployment"]["metadata"]["name"] == "imaged-api"
    assert documents["Service"]["spec"]["type"] == "ClusterIP"
    assert documents["Service"]["metadata"]["annotations"]["cloud.google.com/backend-config"] == '{"default": "imaged-api"}'
    assert documents["BackendConfig"]["spec"]["healthCheck"]["requestPath"] == "/ping"
    assert documents["ManagedCertificate"]["spec"]["domains"] == ["api.example.com"]
    ingress = documents["Ingress"]
    assert ingress["metadata"]["annotations"]["networking.gke.io/managed-certificates"] == "imaged-api"
    assert ingress["spec"]["rules"][0]["host"] == "api.example.com"


def test_dry_run_json_is_a_list_and_the_plain_dry_run_a_plan(fresh: Path) -> None:
    done = gke(fresh, "--dry-run", "-o", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["kind"] == "List" and [i["kind"] for i in listed["items"]][:3] == ["Namespace", "Service", "Deployment"]
    done = gke(fresh, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["environment"]["IMAGED_SECRET"] == "****" and plan["secret"] == {"name": "imaged-env-secrets", "keys": ["IMAGED_SECRET"]}
    assert plan["image"] == "REGISTRY/imaged:1.2.3"


def test_output_goes_with_dry_run_only(fresh: Path) -> None:
    done = gke(fresh, "-o", "yaml")
    assert done.returncode != 0 and "-o/--output goes with --dry-run" in done.stderr


def test_every_wrong_setting_is_named_in_one_line(fresh: Path) -> None:
    configure(fresh, replicas=0, cpu_limit="lots", memory_request=12, kubernetes_version="1.20", host="not a host", colour="red", target_cpu=150)
    commit(fresh, "wrong")
    done = gke(fresh, "--dry-run")
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    for name in ("unknown setting(s) colour", "replicas", "cpu_limit", "memory_request", "kubernetes_version", "host", "target_cpu"):
        assert name in line, f"{name} not named in: {line}"
    assert "Traceback" not in done.stderr


def test_a_secret_is_refused_as_a_plain_variable(fresh: Path) -> None:
    configure(fresh, environment={"IMAGED_SECRET": "plain"})
    commit(fresh, "plain")
    done = gke(fresh, "--dry-run")
    assert done.returncode != 0 and "IMAGED_SECRET are env_secrets" in done.stderr


def test_every_setting_is_documented_in_deploy_md() -> None:
    from macaron_gke.gke_objects import DOCUMENTED, GkeSettings

    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("### deploy.gke in macaron.yaml") :]
    section = section[: section.index("\n### ", 5)]
    for name in DOCUMENTED:
        assert f"`{name}`" in section, f"deploy.gke.{name} is not in docs/deploy.md"
    assert set(DOCUMENTED) == set(GkeSettings.__dataclass_fields__)
