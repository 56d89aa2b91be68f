"""``macaron deploy gke`` through the CLI: the settings, the objects of --dry-run, and deploys against a Kubernetes API.

The dry run needs no cluster and no credentials: it prints what a deploy would apply, ready for ``kubectl apply``,
and ``kubernetes-validate --strict`` (macaron-gke's test extra) checks it for the ``kubernetes_version`` set.
The deploys go through the ``kubernetes`` client, loaded from a kubeconfig (``KUBECONFIG``, as a user sets it), to
macaron_gke.k8s_standin: the REST wire protocol on 127.0.0.1, whose controller runs each new pod template's image
with podman, pulled from a registry on 127.0.0.1, behind the Service's address. The deploy tests follow one
service's life in order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from containers import deployable_imaged, git, private_storage, registry_free_base
from macaron.deploying import local_registry

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imaged"
SECRET = "s3cr3t-" + os.urandom(8).hex()
MACARON = [sys.executable, "-m", "macaron"]
HELLO = ROOT / "examples" / "helloworld"


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


# -- deploys against the Kubernetes API stand-in ------------------------------------------------------------


@dataclass
class Cluster:
    standin: Any
    registry: str
    kubeconfig: Path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_storage(tmp_path_factory.mktemp("containers")):
        yield registry_free_base()


@pytest.fixture(scope="module")
def cluster(base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from macaron_gke.k8s_standin import KubeStandin

    folder = tmp_path_factory.mktemp("kube")
    (folder / "registry").mkdir()
    with local_registry(folder / "registry") as registry, KubeStandin(folder / "api", progress_deadline_cap=60) as standin:
        yield Cluster(standin, registry, standin.write_kubeconfig(folder / "kubeconfig"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, base: str, cluster: Cluster) -> Path:
    settings = {
        "cluster": "standin",
        "namespace": "shop",
        "registry": f"{cluster.registry}/team",
        "replicas": 1,
        "min_replicas": 1,
        "progress_deadline": 60,
        "prestop_seconds": 1,
        "termination_grace": 5,
        "timeout": 60,
    }
    return deployable_imaged(tmp_path_factory.mktemp("repo") / "imaged", base, {"gke": settings})


def deploy(service: Path, cluster: Cluster, *args: str, **changes: str | None) -> subprocess.CompletedProcess[str]:
    return gke(service, "--json", *args, **{"KUBECONFIG": str(cluster.kubeconfig), **changes})


def service_url(cluster: Cluster) -> str:
    found = cluster.standin.get(_kind("Service"), "shop", "imaged")
    point = found["status"]["loadBalancer"]["ingress"][0]
    return f"http://{point['ip']}:{point['ports'][0]['port']}"


def _kind(name: str) -> Any:
    from macaron_gke.k8s_standin import KINDS

    return next(kind for kind in KINDS if kind.kind == name)


def served(cluster: Cluster) -> str | None:
    try:
        return str(requests.get(f"{service_url(cluster)}/version", timeout=15).json()["version"])
    except (requests.RequestException, ValueError, KeyError):
        return None


def revisions(cluster: Cluster) -> dict[int, str]:
    """revision -> version label of the Deployment's ReplicaSets."""
    found = cluster.standin.items(_kind("ReplicaSet"), "shop")
    return {
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
        for rs in found
    }


def test_a_missing_secret_is_refused_before_any_api_call(service: Path, cluster: Cluster) -> None:
    calls = list(cluster.standin.calls)
    done = deploy(service, cluster, IMAGED_SECRET=None)
    assert done.returncode != 0
    assert "IMAGED_SECRET" in done.stderr and "Traceback" not in done.stderr
    assert cluster.standin.calls == calls


def test_no_credentials_is_one_clear_line(service: Path, cluster: Cluster, tmp_path: Path) -> None:
    calls = list(cluster.standin.calls)
    done = deploy(service, cluster, KUBECONFIG=str(tmp_path / "no-kubeconfig"), HOME=str(tmp_path))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "no Kubernetes credentials in" in last and "get-credentials" in last and "Traceback" not in done.stderr
    assert cluster.standin.calls == calls
    refused = yaml.safe_load(cluster.kubeconfig.read_text())
    refused["users"][0]["user"]["token"] = "not-the-token"
    (tmp_path / "refused").write_text(yaml.safe_dump(refused))
    done = deploy(service, cluster, KUBECONFIG=str(tmp_path / "refused"))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "401" in last and "credentials were refused" in last and len(last) < 400, done.stderr
    refused["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # the discard port: nothing listens
    (tmp_path / "unreachable").write_text(yaml.safe_dump(refused))
    done = deploy(service, cluster, KUBECONFIG=str(tmp_path / "unreachable"))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot reach the cluster" in last and "127.0.0.1:9" in last and len(last) < 400 and "Traceback" not in done.stderr, done.stderr


def test_the_first_deploy_serves(service: Path, cluster: Cluster) -> None:
    done = deploy(service, cluster)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [step["step"] for step in summary["steps"]] == ["check", "image", "apply", "rollout", "gate"]
    assert summary["version"] == "1.2.3" and summary["previous"] is None and summary["url"] == service_url(cluster)
    assert served(cluster) == "1.2.3"
    assert "rollout: 1/1 updated, 1 available" in done.stderr
    secret = cluster.standin.get(_kind("Secret"), "shop", "imaged-env-secrets")
    assert secret is not None and "IMAGED_SECRET" in secret["data"]
    deployment = cluster.standin.get(_kind("Deployment"), "shop", "imaged")
    managers = {entry["manager"] for entry in deployment["metadata"].get("managedFields", [])}
    assert not managers or "macaron" in managers
    assert any(call.startswith("PATCH /apis/apps/v1/namespaces/shop/deployments/imaged") for call in cluster.standin.calls)
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Namespace"):
        assert cluster.standin.get(_kind(kind), "" if kind == "Namespace" else "shop", "shop" if kind == "Namespace" else "imaged") is not None


def test_an_update_that_passes_its_gate_serves(service: Path, cluster: Cluster) -> None:
    # With a host, the Ingress, its certificate and its health check too; the gate is given the Service's address,
    # since the host's https URL does not resolve here.
    configure(service, host="imaged.example.com", url=service_url(cluster))
    commit(service, "a host")
    from kubernetes import client, config

    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig), context="standin"))
    apps.patch_namespaced_deployment("imaged", "shop", {"spec": {"replicas": 3}})  # as the autoscaler would
    done = deploy(service, cluster, "--version", "2.0.0")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["version"] == "2.0.0" and summary["previous"] == "1" and summary["revision"] == "2"
    assert served(cluster) == "2.0.0"
    for kind in ("Ingress", "ManagedCertificate", "BackendConfig"):
        assert cluster.standin.get(_kind(kind), "shop", "imaged") is not None, kind
    assert cluster.standin.get(_kind("Service"), "shop", "imaged")["spec"]["type"] == "ClusterIP"
    assert apps.read_namespaced_deployment("imaged", "shop").spec.replicas == 3  # the autoscaler's count kept


def test_an_update_failing_its_acceptance_tests_is_rolled_back(service: Path, cluster: Cluster) -> None:
    done = deploy(service, cluster, "--version", "2.1.0-rc1")
    assert done.returncode != 0
    assert "2.1.0-rc1 is not a release" in done.stderr, done.stderr
    assert "rolled back to 2.0.0" in done.stderr.strip().splitlines()[-1]
    assert served(cluster) == "2.0.0"
    assert revisions(cluster)[max(revisions(cluster))] == "2.0.0"  # 2.0.0's ReplicaSet, with the newest revision


def test_a_rollout_that_never_becomes_available_is_rolled_back(service: Path, cluster: Cluster) -> None:
    configure(service, health_check_path="/not-there", progress_deadline=5)
    commit(service, "a probe path nothing answers")
    try:
        done = deploy(service, cluster, "--version", "2.2.0")
    finally:
        configure(service, health_check_path="/ping", progress_deadline=60)
        commit(service, "the probe back on /ping")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "the rollout stalled" in last and "rolled back to 2.0.0" in last, done.stderr
    assert served(cluster) == "2.0.0"


def test_rollback_on_demand_to_the_previous_revision_and_to_a_version(service: Path, cluster: Cluster) -> None:
    done = deploy(service, cluster, "--rollback", "1.2.3")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "1.2.3"
    assert served(cluster) == "1.2.3"
    done = deploy(service, cluster, "--rollback")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "2.0.0"
    assert served(cluster) == "2.0.0"
    done = deploy(service, cluster, "--rollback", "9.9.9")
    assert done.returncode != 0 and "no ReplicaSet of version 9.9.9" in done.stderr


def test_rehearse_on_the_example_service(base: str, tmp_path: Path) -> None:
    root = tmp_path / "helloworld"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    commit(root, "helloworld")
    done = subprocess.run([*MACARON, "deploy", "gke", str(root), "--rehearse", "--json"], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert [r["version"] for r in summary["rounds"]] == ["0.1.0", "0.1.0-rehearsal", "0.1.0"]
