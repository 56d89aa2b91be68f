"""What ``macaron deploy gke`` applies: the ``deploy.gke`` settings and the Kubernetes objects built from them.

Every object is built from the official ``kubernetes`` client's models (or, for GKE's own kinds that the client
has no model of, ManagedCertificate and BackendConfig, from plain mappings of the same shape) and serialized with
``ApiClient().sanitize_for_serialization``: what ``--dry-run -o yaml`` prints is exactly what is applied. The
Secret holding the ``env_secrets`` values is never one of them: it is created through the API from the deployer's
environment (:mod:`macaron_gke.gke`), and the Deployment refers to it by ``secretKeyRef`` only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from macaron.config import Config
from macaron.deploying import DeployError
from macaron.image import USER, secret_names

PORT = 8080
SERVICE_PORT = 80
MANAGER = "macaron"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
SECRET_VERSION_ANNOTATION = "macaron.dev/secret-version"
RUN_AS = int(USER.split(":")[0])
LOWEST_VERSION = (1, 30)  # the preStop sleep action (no shell needed in the image) is on by default from 1.30

# What docs/deploy.md documents, in the same order; each default is derived from the service where it can be.
DOCUMENTED = {
    "name": "name of the Deployment, Service and the other objects (default: the service's name, as Kubernetes allows)",
    "namespace": "namespace of the objects, created if missing (default: the name)",
    "cluster": "kubeconfig context to use (default: the kubeconfig's current context)",
    "kubeconfig": "kubeconfig file (default: KUBECONFIG, else ~/.kube/config)",
    "registry": "registry to push the image to, host/path (required for a real deploy, e.g. <region>-docker.pkg.dev/<project>/macaron)",
    "replicas": "pods of the first deploy; later deploys keep the count the autoscaler set (between min_replicas and max_replicas)",
    "cpu_request": "CPU requested for a pod (what the scheduler reserves, and the autoscaler's 100%)",
    "memory_request": "memory requested for a pod",
    "cpu_limit": "CPU limit of a pod",
    "memory_limit": "memory limit of a pod",
    "min_replicas": "fewest pods the HorizontalPodAutoscaler keeps",
    "max_replicas": "most pods the HorizontalPodAutoscaler starts",
    "target_cpu": "average CPU use (percent of cpu_request) the autoscaler aims at",
    "host": "host name served over TLS: adds an Ingress, a ManagedCertificate and a BackendConfig (default: none, a LoadBalancer Service)",
    "url": "URL the gate tests (default: https://<host>, else the Service's load balancer address)",
    "environment": "non-secret environment variables for the service (mapping)",
    "health_check_path": "path of the startup, readiness and liveness probes and of the load balancer's health check",
    "progress_deadline": "seconds a rollout may go without progress before it counts as stalled (the Deployment's progressDeadlineSeconds)",
    "prestop_seconds": "seconds a pod keeps serving after it is taken out of the Service, before it is stopped",
    "termination_grace": "seconds a stopping pod has for its in-flight requests, the preStop pause included",
    "read_only_root_filesystem": "mount the image read-only (an emptyDir on /tmp is writable); false if the service writes elsewhere",
    "kubernetes_version": "Kubernetes version of the cluster, major.minor: what --dry-run's objects are valid for",
    "timeout": "seconds to wait for the Service's address and for the new version to answer there",
}


@dataclass(frozen=True)
class GkeSettings:
    name: str
    namespace: str = ""
    cluster: str | None = None
    kubeconfig: str | None = None
    registry: str | None = None
    replicas: int = 2
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu: int = 70
    host: str | None = None
    url: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    health_check_path: str = "/ping"
    progress_deadline: int = 600
    prestop_seconds: int = 5
    termination_grace: int = 30
    read_only_root_filesystem: bool = True
    kubernetes_version: str = "1.31"
    timeout: float = 300.0

    @property
    def secret(self) -> str:
        """The Secret holding the service's ``env_secrets``: made by the deploy, never in a manifest."""
        return f"{self.name}-env-secrets"

    def image_registry(self) -> str:
        return self.registry or "REGISTRY"


def slug(text: str, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label: lowercase letters, digits and dashes, starting with a letter."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].rstrip("-")
    return cleaned if cleaned[:1].isalpha() else f"s-{cleaned}"[:limit].rstrip("-")


def version_label(version: str) -> str:
    """``version`` as a label value allows: 63 characters of letters, digits, ``-_.``, alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", version)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned) or "local"


CPU = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def _problems_of_types(section: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    types = {f.name: str(f.type) for f in fields(GkeSettings)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in section.items():
        expected = types[name]
        if value is None:
            continue
        if expected == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"{name}: a whole number >= 0, not {value!r}")
            continue
        if expected == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
            problems.append(f"{name}: a number > 0, not {value!r}")
            continue
        if expected == "bool" and not isinstance(value, bool):
            problems.append(f"{name}: true or false, not {value!r}")
            continue
        if expected == "dict[str, str]":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
                problems.append(f"{name}: a mapping of variable names to values")
                continue
            value = {str(k): str(v) for k, v in value.items()}
        if expected in ("str", "str | None"):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("cpu_request", "cpu_limit", "kubernetes_version"):
                value = str(value)
            if not isinstance(value, str):
                problems.append(f"{name}: a string, not {value!r}")
                continue
        values[name] = value
    return values, problems


def _problems_of_values(s: GkeSettings) -> list[str]:
    problems = []
    for name in ("name", "namespace"):
        if not LABEL.match(getattr(s, name)):
            problems.append(f"{name}: a DNS label (lowercase letters, digits, '-', at most 63), not {getattr(s, name)!r}")
    for name in ("cpu_request", "cpu_limit"):
        if not CPU.match(getattr(s, name)):
            problems.append(f"{name}: a CPU quantity such as 250m or 1, not {getattr(s, name)!r}")
    for name in ("memory_request", "memory_limit"):
        if not MEMORY.match(getattr(s, name)):
            problems.append(f"{name}: a memory quantity such as 256Mi or 1Gi, not {getattr(s, name)!r}")
    if s.max_replicas < 1 or not s.min_replicas <= s.replicas <= s.max_replicas or s.min_replicas < 1:
        problems.append(f"replicas: 1 <= min_replicas ({s.min_replicas}) <= replicas ({s.replicas}) <= max_replicas ({s.max_replicas})")
    if not 1 <= s.target_cpu <= 100:
        problems.append(f"target_cpu: a percent from 1 to 100, not {s.target_cpu}")
    if s.host is not None and not HOST.match(s.host):
        problems.append(f"host: a host name such as api.example.com, not {s.host!r}")
    if s.url is not None and not re.match(r"^https?://[^/\s]+", s.url):
        problems.append(f"url: an http(s) URL, not {s.url!r}")
    if not s.health_check_path.startswith("/"):
        problems.append(f"health_check_path: a path starting with /, not {s.health_check_path!r}")
    if s.progress_deadline < 1:
        problems.append("progress_deadline: at least 1 second")
    if s.termination_grace <= s.prestop_seconds:
        problems.append(f"termination_grace ({s.termination_grace}) must be more than prestop_seconds ({s.prestop_seconds}), or requests are cut")
    version = re.fullmatch(r"1\.(\d+)", s.kubernetes_version)
    if version is None or (1, int(version.group(1))) < LOWEST_VERSION:
        problems.append(f"kubernetes_version: major.minor, at least {'.'.join(map(str, LOWEST_VERSION))}, not {s.kubernetes_version!r}")
    if s.registry is not None and (not s.registry or s.registry.startswith(("http:", "https:")) or " " in s.registry):
        problems.append(f"registry: host/path, no scheme, not {s.registry!r}")
    return problems


def load_settings(config: Config, service_name: str, *, environ: dict[str, str] | None = None) -> GkeSettings:
    """Read ``deploy.gke``; every setting has a default, so a dry run or a rehearsal needs no section.

    Every wrong setting is named, all in one line, so one edit fixes them all.
    """
    section = config.section("deploy").section("gke").to_dict()
    where = f"{config.where()}: deploy.gke"
    unknown = sorted(set(section) - set(DOCUMENTED))
    problems = [f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(DOCUMENTED)})"] if unknown else []
    values, wrong = _problems_of_types({k: v for k, v in section.items() if k not in unknown})
    problems += wrong
    name = slug(str(values.pop("name", service_name)), 47)  # room for the Secret's suffix
    values.setdefault("namespace", name)
    settings = GkeSettings(name=name, **values)
    problems += _problems_of_values(settings)
    secrets = set(secret_names(config.root, config.env)) if config.root else set()
    clash = sorted(set(settings.environment) & secrets)
    if clash:
        problems.append(f"environment: {', '.join(clash)} are env_secrets: they come from the Secret {settings.secret}")
    if problems:
        raise DeployError(f"{where}: " + "; ".join(problems))
    env = environ if environ is not None else dict(os.environ)
    kubeconfig = settings.kubeconfig or env.get("KUBECONFIG") or None
    return replace(settings, kubeconfig=os.path.expanduser(kubeconfig) if kubeconfig else None)


# -- the objects ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """What one deploy puts in the pod template: the image, its version, the variables and the secrets' names."""

    image: str
    version: str
    variables: dict[str, str]
    secret_names: list[str]
    secret_version: str | None = None  # the Secret's resourceVersion: a changed secret rolls the pods


def _labels(s: GkeSettings, version: str | None = None) -> dict[str, str]:
    labels = {NAME_LABEL: s.name, MANAGED_LABEL: MANAGER}
    return {**labels, VERSION_LABEL: version_label(version)} if version else labels


def _meta(s: GkeSettings, *, version: str | None = None, annotations: dict[str, str] | None = None, namespaced: bool = True) -> Any:
    from kubernetes import client

    return client.V1ObjectMeta(
        name=s.name, namespace=s.namespace if namespaced else None, labels=_labels(s, version), annotations=annotations or None
    )


def namespace(s: GkeSettings) -> Any:
    from kubernetes import client

    return client.V1Namespace(api_version="v1", kind="Namespace", metadata=client.V1ObjectMeta(name=s.namespace, labels={MANAGED_LABEL: MANAGER}))


def container(s: GkeSettings, release: Release) -> Any:
    from kubernetes import client

    env = [client.V1EnvVar(name=name, value=value) for name, value in sorted(release.variables.items())]
    env += [
        client.V1EnvVar(name=name, value_from=client.V1EnvVarSource(secret_key_ref=client.V1SecretKeySelector(name=s.secret, key=name)))
        for name in sorted(release.secret_names)
    ]

    def probe(period: int, failures: int) -> Any:
        return client.V1Probe(
            http_get=client.V1HTTPGetAction(path=s.health_check_path, port="http"), period_seconds=period, failure_threshold=failures, timeout_seconds=2
        )

    return client.V1Container(
        name="service",
        image=release.image,
        ports=[client.V1ContainerPort(name="http", container_port=PORT, protocol="TCP")],
        env=env,
        resources=client.V1ResourceRequirements(
            requests={"cpu": s.cpu_request, "memory": s.memory_request}, limits={"cpu": s.cpu_limit, "memory": s.memory_limit}
        ),
        # Started when /ping answers, however long the start takes (up to the rollout's deadline); in the Service
        # only while it answers; restarted when it stops answering for 30 s.
        startup_probe=probe(1, max(1, s.progress_deadline)),
        readiness_probe=probe(2, 2),
        liveness_probe=probe(10, 3),
        # Taken out of the Service's endpoints first, the pod keeps serving prestop_seconds so load balancers
        # catch up; then SIGTERM, and the rest of termination_grace for in-flight requests.
        lifecycle=client.V1Lifecycle(pre_stop=client.V1LifecycleHandler(sleep=client.V1SleepAction(seconds=s.prestop_seconds))),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=s.read_only_root_filesystem,
            capabilities=client.V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )


def deployment(s: GkeSettings, release: Release) -> Any:
    from kubernetes import client

    annotations = {SECRET_VERSION_ANNOTATION: release.secret_version} if release.secret_version else None
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=_labels(s, release.version), annotations=annotations),
        spec=client.V1PodSpec(
            containers=[container(s, release)],
            termination_grace_period_seconds=s.termination_grace,
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=RUN_AS,
                run_as_group=RUN_AS,
                fs_group=RUN_AS,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            ),
            automount_service_account_token=False,
            volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource(size_limit="64Mi"))],
        ),
    )
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=_meta(s, version=release.version),
        spec=client.V1DeploymentSpec(
            replicas=s.replicas,
            selector=client.V1LabelSelector(match_labels={NAME_LABEL: s.name}),  # not the version: a selector is immutable
            strategy=client.V1DeploymentStrategy(
                type="RollingUpdate", rolling_update=client.V1RollingUpdateDeployment(max_unavailable=0, max_surge=1)
            ),
            min_ready_seconds=0,
            progress_deadline_seconds=s.progress_deadline,
            revision_history_limit=10,
            template=template,
        ),
    )


def service(s: GkeSettings) -> Any:
    from kubernetes import client

    # Behind an Ingress, GKE's load balancer reaches the pods through network endpoint groups, health-checked as
    # the BackendConfig says; without one, the Service is the load balancer.
    annotations = (
        {"cloud.google.com/neg": '{"ingress": true}', "cloud.google.com/backend-config": f'{{"default": "{s.name}"}}'} if s.host else None
    )
    return client.V1Service(
        api_version="v1",
        kind="Service",
        metadata=_meta(s, annotations=annotations),
        spec=client.V1ServiceSpec(
            type="ClusterIP" if s.host else "LoadBalancer",
            selector={NAME_LABEL: s.name},
            ports=[client.V1ServicePort(name="http", port=SERVICE_PORT, target_port="http", protocol="TCP")],
        ),
    )


def autoscaler(s: GkeSettings) -> Any:
    from kubernetes import client

    return client.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=_meta(s),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name=s.name),
            min_replicas=s.min_replicas,
            max_replicas=s.max_replicas,
            metrics=[
                client.V2MetricSpec(
                    type="Resource",
                    resource=client.V2ResourceMetricSource(
                        name="cpu", target=client.V2MetricTarget(type="Utilization", average_utilization=s.target_cpu)
                    ),
                )
            ],
        ),
    )


def disruption_budget(s: GkeSettings) -> Any:
    from kubernetes import client

    # One pod at a time may be evicted (node upgrades, scale-downs); with one replica that lets a drain proceed.
    return client.V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=_meta(s),
        spec=client.V1PodDisruptionBudgetSpec(max_unavailable=1, selector=client.V1LabelSelector(match_labels={NAME_LABEL: s.name})),
    )


def backend_config(s: GkeSettings) -> dict[str, Any]:
    """GKE's BackendConfig (cloud.google.com/v1; the client has no model of it): the load balancer's health check."""
    return {
        "apiVersion": "cloud.google.com/v1",
        "kind": "BackendConfig",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {"healthCheck": {"type": "HTTP", "requestPath": s.health_check_path, "port": PORT, "checkIntervalSec": 5, "timeoutSec": 3}},
    }


def managed_certificate(s: GkeSettings) -> dict[str, Any]:
    """GKE's ManagedCertificate (networking.gke.io/v1): Google issues and renews the certificate of ``host``."""
    return {
        "apiVersion": "networking.gke.io/v1",
        "kind": "ManagedCertificate",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": _labels(s)},
        "spec": {"domains": [s.host]},
    }


def ingress(s: GkeSettings) -> Any:
    from kubernetes import client

    backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(name=s.name, port=client.V1ServiceBackendPort(number=SERVICE_PORT)))
    return client.V1Ingress(
        api_version="networking.k8s.io/v1",
        kind="Ingress",
        metadata=_meta(
            s,
            annotations={
                "kubernetes.io/ingress.class": "gce",
                "networking.gke.io/managed-certificates": s.name,
                "kubernetes.io/ingress.allow-http": "false",
            },
        ),
        spec=client.V1IngressSpec(
            default_backend=backend,
            rules=[
                client.V1IngressRule(
                    host=s.host,
                    http=client.V1HTTPIngressRuleValue(paths=[client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]),
                )
            ],
        ),
    )


def objects(s: GkeSettings, release: Release) -> list[dict[str, Any]]:
    """Every object to apply, in the order to apply them, as the API receives them (camelCase mappings)."""
    from kubernetes.client import ApiClient

    built: list[Any] = [namespace(s), service(s), deployment(s, release), autoscaler(s), disruption_budget(s)]
    if s.host:
        built += [backend_config(s), managed_certificate(s), ingress(s)]
    serialize = ApiClient().sanitize_for_serialization
    return [serialize(obj) for obj in built]  # type: ignore[no-untyped-call]
