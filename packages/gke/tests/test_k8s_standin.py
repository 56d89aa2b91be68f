"""The Kubernetes API stand-in, driven only through the official ``kubernetes`` client, running a real image.

One cluster and one service image (tests/fixtures/imaged, built once with ``macaron image build``) for the module;
the tests follow one Deployment's life in order: first deploy, an update, a broken update, a rollback, deletion.
What is served is asked of the Service's URL over HTTP, as the gke target's gate does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from containers import git, private_storage, registry_free_base
from macaron_gke.k8s_standin import KubeStandin

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "imaged"
MACARON = [sys.executable, "-m", "macaron"]
NS = "team"
SECRET = "k8s-s3cr3t"
MANAGER = "macaron"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_storage(tmp_path_factory.mktemp("containers")):
        base = registry_free_base()
        root = tmp_path_factory.mktemp("repo") / "imaged"
        shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
        (root / "macaron.yaml").write_text((root / "macaron.yaml").read_text() + f"image: {{base: '{base}'}}\n")
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "imaged")
        done = subprocess.run([*MACARON, "image", "build", str(root), "--json"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        yield str(json.loads(done.stdout)["image"])


@pytest.fixture(scope="module")
def cluster(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandin]:
    with KubeStandin(tmp_path_factory.mktemp("k8s"), progress_deadline_cap=90) as standin:
        yield standin
        assert standin.errors == []
    assert containers_of(standin) == [], "the stand-in removed every container it started"


def containers_of(standin: KubeStandin, namespace: str = "") -> list[str]:
    listed = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=macaron.k8s-standin={standin.instance}"],
                            capture_output=True, text=True, check=False)
    return [name for name in listed.stdout.split() if f"-{namespace}-" in name]


@pytest.fixture(scope="module")
def api(cluster: KubeStandin, tmp_path_factory: pytest.TempPathFactory) -> client.ApiClient:
    kubeconfig = cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", namespace=NS)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), context="standin", client_configuration=configuration)
    return client.ApiClient(configuration)


def apply(api: client.ApiClient, body: dict[str, Any]) -> Any:
    """Server-side apply through the DynamicClient, as the gke target does."""
    resource = dynamic.DynamicClient(api).resources.get(api_version=body["apiVersion"], kind=body["kind"])
    namespace = NS if resource.namespaced else None
    return resource.server_side_apply(body=body, name=body["metadata"]["name"], namespace=namespace, field_manager=MANAGER, force_conflicts=True)


def deployment(image: str, version: str, **template_changes: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "imaged",
        "image": image,
        "ports": [{"containerPort": 8080}],
        "env": [
            {"name": "MACARON_VERSION", "value": version},
            {"name": "IMAGED_SECRET", "valueFrom": {"secretKeyRef": {"name": "imaged-secrets", "key": "IMAGED_SECRET"}}},
        ],
        "readinessProbe": {"httpGet": {"path": "/ping", "port": 8080}, "periodSeconds": 1},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
        **template_changes,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "imaged", "labels": {"app": "imaged"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "imaged"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "imaged", "version": version}},
                "spec": {
                    "containers": [container],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def until(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def conditions(api: client.ApiClient) -> dict[str, tuple[str, str]]:
    status = client.AppsV1Api(api).read_namespaced_deployment_status("imaged", NS).status
    return {c.type: (c.status, c.reason) for c in status.conditions or []}


def rolled_out(api: client.ApiClient) -> bool:
    found = client.AppsV1Api(api).read_namespaced_deployment("imaged", NS)
    status = found.status
    return bool(
        status.observed_generation == found.metadata.generation
        and status.updated_replicas == status.available_replicas == found.spec.replicas
        and conditions(api).get("Progressing") == ("True", "NewReplicaSetAvailable")
    )


def url(api: client.ApiClient) -> str:
    ingress = client.CoreV1Api(api).read_namespaced_service("imaged", NS).status.load_balancer.ingress[0]
    return f"http://{ingress.ip}:{ingress.ports[0].port}"


def served(api: client.ApiClient) -> str | None:
    try:
        answer = requests.get(f"{url(api)}/version", timeout=10)
        return str(answer.json()["version"]) if answer.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError):
        return None


def revisions(api: client.ApiClient) -> dict[str, str]:
    """ReplicaSet name -> revision, of the Deployment's ReplicaSets."""
    found = client.AppsV1Api(api).list_namespaced_replica_set(NS, label_selector="app=imaged").items
    return {rs.metadata.name: rs.metadata.annotations["deployment.kubernetes.io/revision"] for rs in found}


def test_without_the_token_every_call_is_401(cluster: KubeStandin) -> None:
    anonymous = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
    with pytest.raises(ApiException) as raised:
        anonymous.list_namespace()
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["reason"] == "Unauthorized"


def test_a_first_deploy_serves_through_the_service(api: client.ApiClient, image: str, cluster: KubeStandin) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    apply(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="imaged-secrets"), string_data={"IMAGED_SECRET": SECRET}))
    created = apply(api, deployment(image, "1.0.0"))
    kept = deployment(image, "1.0.0")  # still running when the stand-in stops, which removes it
    kept["metadata"]["namespace"] = "kept"
    apply(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}})
    dynamic.DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment").server_side_apply(
        body=kept, namespace="kept", field_manager=MANAGER)
    core.create_namespaced_secret("kept", client.V1Secret(metadata=client.V1ObjectMeta(name="imaged-secrets"), string_data={"IMAGED_SECRET": SECRET}))
    assert created.metadata.generation == 1 and created.metadata.uid
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "imaged"},
               "spec": {"type": "LoadBalancer", "selector": {"app": "imaged"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    apply(api, service)

    stream = watch.Watch().stream(apps.list_namespaced_deployment, NS, field_selector="metadata.name=imaged", timeout_seconds=90)
    for event in stream:
        status = event["object"].status
        if status.available_replicas == 2:
            break
    assert rolled_out(api)
    assert conditions(api)["Available"] == ("True", "MinimumReplicasAvailable")
    assert list(revisions(api).values()) == ["1"]
    assert until("the Service serves 1.0.0", lambda: served(api) == "1.0.0")

    pods = core.list_namespaced_pod(NS, label_selector="app=imaged").items
    assert len(pods) == 1 and pods[0].status.container_statuses[0].ready and pods[0].metadata.labels["version"] == "1.0.0"
    container = pods[0].metadata.annotations["macaron.k8s-standin/container"]
    printed = subprocess.run(["podman", "exec", container, "printenv", "IMAGED_SECRET"], capture_output=True, text=True, check=False)
    assert printed.stdout.strip() == SECRET, f"the secretKeyRef reached the container: {printed.stderr}"
    def writes(where: str) -> bool:
        return subprocess.run(["podman", "exec", container, "touch", where], capture_output=True, check=False).returncode == 0

    assert writes("/tmp/x") and not writes("/app/x"), "a read-only root, writable where the emptyDir is"
    assert subprocess.run(["podman", "exec", container, "id", "-u"], capture_output=True, text=True, check=False).stdout.strip() == "10001"


def test_an_update_rolls_out_revision_2_while_the_old_version_serves(api: client.ApiClient, image: str) -> None:
    applied = apply(api, deployment(image, "2.0.0"))
    assert applied.metadata.generation == 2
    assert served(api) == "1.0.0", "the old version serves until the new one is ready"
    until("revision 2 rolled out", lambda: rolled_out(api))
    assert sorted(revisions(api).values()) == ["1", "2"]
    assert client.AppsV1Api(api).read_namespaced_deployment("imaged", NS).metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert served(api) == "2.0.0"
    until("the old pod is gone", lambda: len(client.CoreV1Api(api).list_namespaced_pod(NS).items) == 1)


def test_a_crashing_update_exceeds_its_deadline_and_the_old_version_keeps_serving(api: client.ApiClient, image: str) -> None:
    broken = deployment(image, "3.0.0", command=["python3", "-c", "raise SystemExit(3)"])
    broken["spec"]["progressDeadlineSeconds"] = 8
    apply(api, broken)
    until("ProgressDeadlineExceeded", lambda: conditions(api).get("Progressing") == ("False", "ProgressDeadlineExceeded"), timeout=60)
    assert sorted(revisions(api).values()) == ["1", "2", "3"]
    assert served(api) == "2.0.0"
    status = client.AppsV1Api(api).read_namespaced_deployment_status("imaged", NS).status
    assert status.available_replicas == 2 and status.updated_replicas == 1


def test_re_applying_an_old_template_reuses_its_replicaset_as_the_next_revision(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    first = next(rs for rs in apps.list_namespaced_replica_set(NS).items if rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1")
    template = api.sanitize_for_serialization(first.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash")
    apps.patch_namespaced_deployment(
        "imaged", NS, [{"op": "replace", "path": "/spec/template", "value": template}, {"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": 90}]
    )
    until("the rollback rolled out", lambda: rolled_out(api))
    assert revisions(api)[first.metadata.name] == "4"
    assert sorted(revisions(api).values()) == ["2", "3", "4"]
    assert until("1.0.0 served again", lambda: served(api) == "1.0.0")


def test_server_side_apply_of_an_old_replicasets_template_rolls_back_too(api: client.ApiClient, image: str) -> None:
    apps = client.AppsV1Api(api)
    second = next(rs for rs in apps.list_namespaced_replica_set(NS).items if rs.metadata.annotations["deployment.kubernetes.io/revision"] == "2")
    body = deployment(image, "unused")
    body["spec"]["template"] = api.sanitize_for_serialization(second.spec.template)  # defaulted, as the ReplicaSet keeps it
    del body["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    apply(api, body)
    until("the rollback to 2.0.0 rolled out", lambda: rolled_out(api))
    assert revisions(api)[second.metadata.name] == "5"
    assert until("2.0.0 served again", lambda: served(api) == "2.0.0")


def test_merge_and_strategic_patches_change_the_deployment(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    patched = apps.patch_namespaced_deployment(
        "imaged", NS, {"metadata": {"annotations": {"team": "core"}}}, _content_type="application/merge-patch+json"
    )
    assert patched.metadata.annotations["team"] == "core" and patched.metadata.generation == 5, "metadata alone: the same generation"
    patched = apps.patch_namespaced_deployment(
        "imaged", NS, {"spec": {"replicas": 3}}, _content_type="application/strategic-merge-patch+json"
    )
    assert patched.spec.replicas == 3 and patched.metadata.generation == 6
    until("scaled to 3", lambda: apps.read_namespaced_deployment("imaged", NS).status.available_replicas == 3)
    assert served(api) == "2.0.0"


def test_a_serving_container_that_dies_is_restarted(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    container = core.list_namespaced_pod(NS).items[0].metadata.annotations["macaron.k8s-standin/container"]
    subprocess.run(["podman", "kill", container], capture_output=True, check=True)
    until("a new pod serves", lambda: served(api) == "2.0.0" and core.list_namespaced_pod(NS).items[0].status.container_statuses[0].restart_count == 1)
    assert conditions(api)["Progressing"] == ("True", "NewReplicaSetAvailable")
    assert until("all available again", lambda: rolled_out(api))


def test_errors_are_status_objects_the_client_raises(api: client.ApiClient, image: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    with pytest.raises(ApiException) as raised:
        apps.read_namespaced_deployment("absent", NS)
    assert raised.value.status == 404 and json.loads(raised.value.body)["message"] == 'deployments.apps "absent" not found'
    with pytest.raises(ApiException) as raised:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    assert raised.value.status == 409 and json.loads(raised.value.body)["reason"] == "AlreadyExists"
    stale = apps.read_namespaced_deployment("imaged", NS)
    apps.patch_namespaced_deployment("imaged", NS, {"metadata": {"labels": {"touched": "yes"}}}, _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as raised:
        apps.replace_namespaced_deployment("imaged", NS, stale)
    assert raised.value.status == 409 and json.loads(raised.value.body)["reason"] == "Conflict"
    mismatched = deployment(image, "9.9.9")
    mismatched["metadata"]["name"] = "mismatched"
    mismatched["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as raised:
        apply(api, mismatched)
    assert raised.value.status == 422
    assert json.loads(raised.value.body)["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_custom_objects_and_the_other_kinds_are_stored(api: client.ApiClient) -> None:
    certificate = apply(api, {"apiVersion": "networking.gke.io/v1", "kind": "ManagedCertificate", "metadata": {"name": "imaged"},
                              "spec": {"domains": ["imaged.example.com"]}})
    assert certificate.metadata.uid
    apply(api, {"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": "imaged"}, "spec": {"healthCheck": {"requestPath": "/ping"}}})
    apply(api, {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "imaged"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "imaged"}, "minReplicas": 2, "maxReplicas": 5}})
    apply(api, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "imaged"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "imaged"}}}})
    apply(api, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "imaged"},
                "spec": {"defaultBackend": {"service": {"name": "imaged", "port": {"number": 80}}}, "rules": [{"host": "imaged.example.com"}]}})
    ingress = until("the Ingress has an address", lambda: client.NetworkingV1Api(api).read_namespaced_ingress("imaged", NS).status.load_balancer.ingress)
    assert f"http://{ingress[0].ip}:{ingress[0].ports[0].port}" == url(api)
    custom = client.CustomObjectsApi(api)
    assert custom.get_namespaced_custom_object("cloud.google.com", "v1", NS, "backendconfigs", "imaged")["spec"]["healthCheck"]["requestPath"] == "/ping"
    until("the certificate is Active", lambda: (custom.get_namespaced_custom_object(
        "networking.gke.io", "v1", NS, "managedcertificates", "imaged").get("status") or {}).get("certificateStatus") == "Active", timeout=10)
    assert client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("imaged", NS).spec.max_replicas == 5
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("imaged", NS).spec.min_available == 1


def test_deleting_the_deployment_then_the_namespace_stops_everything(api: client.ApiClient, cluster: KubeStandin) -> None:
    address = url(api)
    client.AppsV1Api(api).delete_namespaced_deployment("imaged", NS)
    assert client.AppsV1Api(api).list_namespaced_replica_set(NS).items == []
    until("its pods are gone", lambda: client.CoreV1Api(api).list_namespaced_pod(NS).items == [], timeout=60)
    assert requests.get(f"{address}/version", timeout=5).status_code == 503, "the Service has no endpoint left"
    client.CoreV1Api(api).delete_namespace(NS)
    with pytest.raises(ApiException) as raised:
        client.AppsV1Api(api).read_namespaced_deployment("imaged", NS)
    assert raised.value.status == 404
    until("no container left", lambda: not [p for p in cluster.pods.values() if p.namespace == NS], timeout=60)
    assert containers_of(cluster, NS) == []
    assert len(containers_of(cluster, "kept")) == 1
    with pytest.raises(requests.RequestException):
        requests.get(f"{address}/version", timeout=5)


# --- the API alone (no container): a bare stand-in ------------------------------------------------------------


@pytest.fixture()
def bare(tmp_path: Path) -> Iterator[client.ApiClient]:
    with KubeStandin(tmp_path / "k8s") as standin:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(standin.write_kubeconfig(tmp_path / "config")), context="standin", client_configuration=configuration)
        yield client.ApiClient(configuration)
        assert standin.errors == []


def test_discovery_finds_every_kind_of_the_contract(bare: client.ApiClient) -> None:
    resources = dynamic.DynamicClient(bare).resources
    kinds = [("v1", "Namespace"), ("v1", "Secret"), ("v1", "Service"), ("v1", "Pod"), ("v1", "Event"), ("apps/v1", "Deployment"),
             ("apps/v1", "ReplicaSet"), ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
             ("networking.k8s.io/v1", "Ingress"), ("networking.gke.io/v1", "ManagedCertificate"), ("cloud.google.com/v1", "BackendConfig")]
    for api_version, kind in kinds:
        found = resources.get(api_version=api_version, kind=kind)
        assert found.namespaced == (kind != "Namespace"), kind
    assert "status" in resources.get(api_version="apps/v1", kind="Deployment").subresources


def test_server_side_apply_replaces_the_managers_fields_and_keeps_the_others(bare: client.ApiClient) -> None:
    core = client.CoreV1Api(bare)
    secrets = dynamic.DynamicClient(bare).resources.get(api_version="v1", kind="Secret")
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1", "b": "2"}}, "stringData": {"K": "v"}}
    secrets.server_side_apply(body=body, namespace="default", field_manager=MANAGER)
    core.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"theirs": "x"}}}, _content_type="application/merge-patch+json")
    body["metadata"]["labels"] = {"a": "1"}
    secrets.server_side_apply(body=body, namespace="default", field_manager=MANAGER, force_conflicts=True)
    found = core.read_namespaced_secret("s", "default")
    assert found.metadata.labels == {"a": "1", "theirs": "x"}, "b, which the manager applied before and dropped now, is gone"
    assert found.data == {"K": "dg=="} and found.type == "Opaque"
    with pytest.raises(DynamicApiError) as refused:
        secrets.patch(body=body, namespace="default", content_type="application/apply-patch+yaml")  # no field_manager
    assert refused.value.status == 400 and "fieldManager" in json.loads(refused.value.body)["message"]


def test_writes_the_controller_owns_dry_runs_and_bad_patches_are_refused(bare: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(bare), client.AppsV1Api(bare)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i")])))
    assert raised.value.status == 405
    body = deployment("localhost/absent:1", "1")
    body["metadata"]["namespace"] = "default"
    apps.create_namespaced_deployment("default", body, dry_run="All")
    assert apps.list_namespaced_deployment("default").items == []
    with pytest.raises(ApiException) as raised:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="Not_A_Name")))
    assert raised.value.status == 422 and json.loads(raised.value.body)["details"]["causes"][0]["field"] == "metadata.name"
    core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="s")))
    core.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"x": "y"}}})  # the client sends an object as a strategic merge patch
    core.patch_namespaced_secret("s", "default", [{"op": "replace", "path": "/metadata/labels", "value": {"a": "b"}}])
    assert core.list_namespaced_secret("default", label_selector="a=b").items[0].metadata.name == "s"
    assert core.list_namespaced_secret("default", label_selector="a!=b").items == []


def test_a_watch_sends_what_changed_since_a_resource_version(bare: client.ApiClient) -> None:
    core = client.CoreV1Api(bare)
    since = core.list_namespaced_secret("default").metadata.resource_version
    core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="w"), string_data={"k": "1"}))
    core.delete_namespaced_secret("w", "default")
    events = [(e["type"], e["object"].metadata.name)
              for e in watch.Watch().stream(core.list_namespaced_secret, "default", resource_version=since, timeout_seconds=1)]
    assert events == [("ADDED", "w"), ("DELETED", "w")]
