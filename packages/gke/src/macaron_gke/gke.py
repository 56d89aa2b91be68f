"""``macaron deploy gke``: the objects applied with server-side apply, the rollout followed, gated, rolled back.

The pipeline (docs/deploy.md): check, image, apply, rollout, gate. The objects (:mod:`macaron_gke.gke_objects`) are
built from the ``kubernetes`` client's models and applied with server-side apply (field manager ``macaron``)
through its dynamic client; the ``env_secrets`` values go into a Secret created through the API, never into a
manifest, a file or a log. The Deployment's rollout is followed until its new ReplicaSet is available, or its
progress deadline passes; then the acceptance and contract tests run against the Service's URL. A stalled
rollout or a failed gate puts the previous ReplicaSet's pod template back (what ``kubectl rollout undo`` does),
waits for it and fails the deploy. The cluster is reached only through the client, with a kubeconfig: no
kubectl, no gcloud.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from macaron.config import Config
from macaron.deploying import DeployError, Pipeline, check_service, mask_environment, run_gate, wait_for_version
from macaron.image import ImageError, build_image, secret_names
from macaron_gke.gke_objects import (
    MANAGED_LABEL,
    MANAGER,
    NAME_LABEL,
    SERVICE_PORT,
    VERSION_LABEL,
    GkeSettings,
    Release,
    load_settings,
    objects,
    version_label,
)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"
POLL_SECONDS = 1.0


def deploy_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["-o", "--output"], type=click.Choice(["yaml", "json"]), default=None,
            help="With --dry-run: print only the objects, as YAML or JSON, ready for kubectl apply.",
        ),
        click.Option(
            ["--rollback"], is_flag=False, flag_value="previous", default=None, metavar="[VERSION]",
            help="Roll back to the previous revision, or to the ReplicaSet of VERSION, and wait for it.",
        ),
    ]


class Stalled(DeployError):
    """The rollout did not become available: its deadline passed."""


def _api_message(exc: Exception) -> str:
    """An API error in one line: the status and the Status object's message, as the API server wrote it."""
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    message = ""
    if body:
        try:
            message = str(json.loads(body).get("message") or "")
        except (ValueError, AttributeError):
            message = str(body)[:300]
    reason = getattr(exc, "reason", None) or type(exc).__name__
    if status is None:
        return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"{status} {reason}" + (f": {message}" if message else "")


def to_yaml(documents: list[dict[str, Any]], comment: str) -> str:
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, explicit_start=True)


def to_json(documents: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, indent=2) + "\n"


class Gke:
    """One ``macaron deploy gke`` run: a dry run, a deploy, or a rollback."""

    def __init__(
        self,
        root: Path,
        config: Config,
        options: dict[str, Any],
        *,
        settings: GkeSettings | None = None,
        pipeline: Pipeline | None = None,
        base: str | None = None,
        rehearsing: bool = False,
    ) -> None:
        self.root, self.config, self.options = root, config, options
        self.version = str(options.get("version") or config.get("version") or "local")
        self.env = options.get("env")
        self.settings = settings or load_settings(config, str(config.get("name") or root.name))
        as_json = bool(options.get("json")) or bool(options.get("output"))  # stdout keeps only the document
        self.pipeline = pipeline or Pipeline("gke", as_json=as_json)
        self.base = base
        self.rehearsing = rehearsing
        self.secrets: dict[str, str] = {}
        self.api: Any = None
        self.dynamic: Any = None

    # -- what to deploy ----------------------------------------------------------------------------

    def variables(self) -> dict[str, str]:
        return {**self.settings.environment, "MACARON_VERSION": self.version, **({"MACARON_ENV": self.env} if self.env else {})}

    def release(self, image: str, secret_version: str | None = None) -> Release:
        return Release(image, self.version, self.variables(), secret_names(self.root, self.env), secret_version)

    def image_name(self) -> str:
        return f"{self.settings.image_registry()}/{self.config.get('name')}:{self.version}"

    # -- commands ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.options.get("output") and not self.options.get("dry_run"):
            raise DeployError("-o/--output goes with --dry-run: it prints the objects instead of applying them")
        if self.options.get("rollback"):
            return self.rollback(str(self.options["rollback"]))
        if self.options.get("dry_run"):
            return self.dry_run()
        return self.deploy()

    def dry_run(self) -> dict[str, Any]:
        s = self.settings
        with self.pipeline.step("check"):
            checked = check_service(self.root, self.env, gate=False)
            self.pipeline.secrets.update(checked.secrets)
        documents = objects(s, self.release(self.image_name()))
        names = sorted(checked.secrets)
        secret_line = (
            f"The Secret {s.namespace}/{s.secret} (keys {', '.join(names)}) is not here: 'macaron deploy gke' creates it "
            "from your environment through the API; the Deployment refers to it only."
            if names
            else "The service has no env_secrets: no Secret."
        )
        comment = f"macaron deploy gke --dry-run: {s.name} {self.version} for Kubernetes {s.kubernetes_version}\n{secret_line}"
        output = self.options.get("output")
        if output:
            text = to_yaml(documents, comment) if output == "yaml" else to_json(documents)
            return {"output": self.pipeline.mask(text)}
        plan = {
            "namespace": s.namespace,
            "name": s.name,
            "version": self.version,
            "image": self.image_name(),
            "context": s.cluster or "(the kubeconfig's current context)",
            "environment": mask_environment({**self.variables(), **checked.secrets}, names),
            "secret": {"name": s.secret, "keys": names},
            "objects": documents,
        }
        for key, value in plan.items():
            if key != "objects":
                self.pipeline.say(f"would deploy: {key} = {value}")
        self.pipeline.say("would apply: " + ", ".join(f"{d['kind']} {d['metadata']['name']}" for d in documents))
        return self.pipeline.summary(dry_run=True, plan=plan)

    def deploy(self) -> dict[str, Any]:
        s = self.settings
        with self.pipeline.step("check") as step:
            checked = check_service(self.root, self.env)
            self.secrets = checked.secrets
            self.pipeline.secrets.update(checked.secrets)
            if not s.registry:
                raise DeployError(
                    "deploy.gke.registry is not set: where the cluster pulls the image from, e.g. "
                    "<region>-docker.pkg.dev/<project>/macaron (docs/deploy.md); nothing was deployed"
                )
            self.connect()
            step.detail["revision"] = checked.commit.revision[:12] if checked.commit else "none"
            step.detail["cluster"] = self.api.configuration.host
        with self.pipeline.step("image") as step:
            from macaron_gke.cloudrun import login_to_google_registry

            login_to_google_registry(s.registry, _google_credentials, self.config.section("image").get("builder"), self.pipeline)
            try:
                built = build_image(self.root, version=self.version, base=self.base, push=s.registry, progress=lambda line: self.pipeline.say(f"  {line}"))
            except ImageError as exc:
                raise DeployError(str(exc)) from exc
            assert built.pushed is not None
            step.detail.update(image=built.pushed, id=built.id[:19])
        live = self.read_deployment()
        before = self.revision_of(live)
        if live is not None and live.spec.replicas is not None:
            # The autoscaler owns the count once the Deployment runs: applying `replicas` again would undo its work.
            s = replace(s, replicas=min(max(live.spec.replicas, s.min_replicas), s.max_replicas))
        with self.pipeline.step("apply") as step:
            secret_version = self.put_secret()
            applied = self.apply(objects(s, self.release(built.pushed, secret_version)))
            step.detail.update(namespace=s.namespace, objects=", ".join(applied))
        try:
            with self.pipeline.step("rollout") as step:
                revision = self.follow()
                step.detail.update(revision=revision, replicas=s.replicas)
            with self.pipeline.step("gate") as step:
                url = self.service_url()
                step.detail["url"] = url
                step.detail["waited"] = wait_for_version(url, self.version, timeout=s.timeout, interval=POLL_SECONDS, progress=self.pipeline.say)
                gate = run_gate(url, self.root, env=self.env, secrets=self.secrets)
                step.detail["tests"] = "passed" if gate.passed else "FAILED"
                if not gate.passed:
                    self.pipeline.say(f"the gate's report (last lines):\n{gate.tail()}")
                    step.ok = False
            if not gate.passed:
                raise DeployError(f"acceptance or contract tests failed against {self.version} ({url})")
        except DeployError as exc:
            try:
                now = self.undo(before)
            except DeployError as second:
                now = f"the rollback failed too: {second}"
            raise DeployError(self.pipeline.mask(f"{exc}; {now}")) from exc
        return self.pipeline.summary(
            url=url, version=self.version, namespace=s.namespace, revision=revision, previous=before, image=built.pushed
        )

    def rollback(self, wanted: str) -> dict[str, Any]:
        with self.pipeline.step("check"):
            self.connect()
        with self.pipeline.step("rollback") as step:
            current = self.current_revision()
            if current is None:
                raise DeployError(f"no Deployment {self.settings.namespace}/{self.settings.name}: nothing to roll back")
            target = self.previous_replica_set(current, None if wanted == "previous" else wanted)
            version = self.put_back(target)
            revision = self.follow()
            url = self.service_url()
            step.detail.update(version=version, revision=revision, was=current)
            step.detail["waited"] = wait_for_version(url, version, timeout=self.settings.timeout, interval=POLL_SECONDS, progress=self.pipeline.say)
        return self.pipeline.summary(url=url, version=version, revision=revision, previous=current)

    # -- the cluster -------------------------------------------------------------------------------

    def connect(self) -> None:
        """The kubeconfig's context, then one call (the core API's discovery) to know the cluster answers us."""
        from kubernetes import config as kube_config
        from kubernetes.config.config_exception import ConfigException

        s = self.settings
        where = s.kubeconfig or os.path.expanduser("~/.kube/config")
        try:
            self.api = kube_config.new_client_from_config(config_file=where, context=s.cluster)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise DeployError(
                f"no Kubernetes credentials in {where}{' (context ' + s.cluster + ')' if s.cluster else ''}: {exc} "
                "Run 'gcloud container clusters get-credentials CLUSTER --region REGION', or set KUBECONFIG or deploy.gke.kubeconfig; "
                "nothing was deployed"
            ) from None
        from kubernetes import client, dynamic

        host = self.api.configuration.host
        self.call(f"reaching the Kubernetes API at {host}", client.CoreV1Api(self.api).get_api_resources)
        self.dynamic = self.call(f"discovering the Kubernetes API at {host}", dynamic.DynamicClient, self.api)

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call; any failure is a one-line DeployError naming it (401/403: the credentials)."""
        from kubernetes.client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError

        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            hint = ""
            if exc.status in (401, 403):
                hint = " (the kubeconfig's credentials were refused: see docs/deploy.md for the roles needed)"
            raise DeployError(self.pipeline.mask(f"{what}: {_api_message(exc)}{hint}")) from None
        except (HTTPError, OpenApiException, OSError) as exc:
            raise DeployError(self.pipeline.mask(f"{what}: cannot reach the cluster: {_api_message(exc)}")) from None

    def resource(self, api_version: str, kind: str) -> Any:
        return self.call(f"finding {kind} ({api_version}) in the cluster", self.dynamic.resources.get, api_version=api_version, kind=kind)

    def apply(self, documents: list[dict[str, Any]]) -> list[str]:
        """Server-side apply of each object, field manager ``macaron``, taking over fields another manager set."""
        applied = []
        for document in documents:
            kind, meta = document["kind"], document["metadata"]
            resource = self.resource(document["apiVersion"], kind)
            self.call(
                f"applying {kind} {meta['name']}",
                resource.server_side_apply,
                body=document,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=MANAGER,
                force_conflicts=True,
            )
            self.pipeline.say(f"applied {kind} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}")
            applied.append(kind)
        return applied

    def put_secret(self) -> str | None:
        """The Secret of the ``env_secrets``, created or replaced through the API; its resourceVersion, or None."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        s = self.settings
        if not self.secrets:
            return None
        core = client.CoreV1Api(self.api)
        # The namespace first: the Secret lives in it (the other objects follow the Secret).
        self.apply([objects(s, self.release("-"))[0]])
        metadata = client.V1ObjectMeta(name=s.secret, namespace=s.namespace, labels={NAME_LABEL: s.name, MANAGED_LABEL: MANAGER})
        body = client.V1Secret(api_version="v1", kind="Secret", type="Opaque", metadata=metadata, string_data=dict(self.secrets))
        try:
            found = core.read_namespaced_secret(s.secret, s.namespace)
        except ApiException as exc:
            if exc.status != 404:
                self.call(f"reading the Secret {s.secret}", core.read_namespaced_secret, s.secret, s.namespace)
            found = None
        if found is None:
            done = self.call(f"creating the Secret {s.secret}", core.create_namespaced_secret, s.namespace, body)
            self.pipeline.say(f"created Secret {s.namespace}/{s.secret} (keys {', '.join(sorted(self.secrets))})")
        else:
            metadata.resource_version = found.metadata.resource_version if found.metadata else None
            done = self.call(f"replacing the Secret {s.secret}", core.replace_namespaced_secret, s.secret, s.namespace, body)
            self.pipeline.say(f"replaced Secret {s.namespace}/{s.secret} (keys {', '.join(sorted(self.secrets))})")
        return str(done.metadata.resource_version) if done.metadata.resource_version else None

    def read_deployment(self) -> Any:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        s = self.settings
        apps = client.AppsV1Api(self.api)
        try:
            return apps.read_namespaced_deployment(s.name, s.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            return self.call(f"reading the Deployment {s.name}", apps.read_namespaced_deployment, s.name, s.namespace)

    def current_revision(self) -> str | None:
        return self.revision_of(self.read_deployment())

    @staticmethod
    def revision_of(deployment: Any) -> str | None:
        if deployment is None:
            return None
        return str((deployment.metadata.annotations or {}).get(REVISION_ANNOTATION) or "") or None

    def follow(self) -> str:
        """Poll the Deployment until its new ReplicaSet is available (what ``kubectl rollout status`` checks)."""
        s = self.settings
        deadline = time.monotonic() + s.progress_deadline + 30  # the Progressing condition should tell first
        last = ""
        while True:
            found = self.read_deployment()
            if found is None:
                raise DeployError(f"the Deployment {s.namespace}/{s.name} is gone")
            status, wanted = found.status, found.spec.replicas if found.spec.replicas is not None else 1
            updated, available, total = status.updated_replicas or 0, status.available_replicas or 0, status.replicas or 0
            progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
            observed = (status.observed_generation or 0) >= (found.metadata.generation or 0)
            line = f"rollout: {updated}/{wanted} updated, {available} available" + (f", {total - updated} old" if total > updated else "")
            if line != last:
                self.pipeline.say(line)
                last = line
            if observed and progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
                raise Stalled(f"the rollout stalled: {progressing.message or 'ProgressDeadlineExceeded'}")
            if observed and updated == wanted and total == wanted and available == wanted:
                return str((found.metadata.annotations or {}).get(REVISION_ANNOTATION) or "?")
            if time.monotonic() > deadline:
                raise Stalled(f"the rollout made no progress in {s.progress_deadline + 30} s ({line})")
            time.sleep(POLL_SECONDS)

    def replica_sets(self) -> list[tuple[int, Any]]:
        """The Deployment's ReplicaSets and their revisions, the newest first."""
        from kubernetes import client

        s = self.settings
        found = self.read_deployment()
        if found is None:
            return []
        listed = self.call(
            "listing the ReplicaSets", client.AppsV1Api(self.api).list_namespaced_replica_set, s.namespace, label_selector=f"{NAME_LABEL}={s.name}"
        )
        owned = [rs for rs in listed.items if any(o.uid == found.metadata.uid for o in rs.metadata.owner_references or [])]
        return sorted(((int((rs.metadata.annotations or {}).get(REVISION_ANNOTATION) or 0), rs) for rs in owned), key=lambda pair: -pair[0])

    def previous_replica_set(self, current: str, version: str | None) -> Any:
        history = self.replica_sets()
        older = [(revision, rs) for revision, rs in history if str(revision) != current]
        if version is not None:
            label = version_label(version)
            older = [(r, rs) for r, rs in history if (rs.spec.template.metadata.labels or {}).get(VERSION_LABEL) == label]
            if not older:
                known = sorted({(rs.spec.template.metadata.labels or {}).get(VERSION_LABEL, "?") for _, rs in history})
                raise DeployError(f"no ReplicaSet of version {version} (the history has: {', '.join(known) or 'nothing'})")
        if not older:
            raise DeployError(f"no revision before {current} in the Deployment's history: nothing to roll back to")
        return older[0][1]

    def put_back(self, replica_set: Any) -> str:
        """Apply the Deployment with ``replica_set``'s pod template, as ``kubectl rollout undo`` does; its version."""
        template = self.api.sanitize_for_serialization(replica_set.spec.template)
        template["metadata"].get("labels", {}).pop(TEMPLATE_HASH_LABEL, None)
        version = str(template["metadata"].get("labels", {}).get(VERSION_LABEL) or "")
        live = self.api.sanitize_for_serialization(self.read_deployment())
        meta = live["metadata"]
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != REVISION_ANNOTATION and "kubectl" not in k}
        labels = {**(meta.get("labels") or {}), **({VERSION_LABEL: version} if version else {})}
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels, **({"annotations": annotations} if annotations else {})},
            "spec": {**live["spec"], "template": template},
        }
        revision = (replica_set.metadata.annotations or {}).get(REVISION_ANNOTATION, "?")
        self.pipeline.say(f"rolling back to revision {revision} (version {version or '?'})")
        self.apply([body])
        return version

    def undo(self, before: str | None) -> str:
        """After a stalled rollout or a failed gate: the previous revision back, waited for; what serves now."""
        s = self.settings
        if before is None:
            from kubernetes import client

            self.call(f"deleting the Deployment {s.name}", client.AppsV1Api(self.api).delete_namespaced_deployment, s.name, s.namespace)
            return f"the Deployment {s.namespace}/{s.name} was new: deleted, nothing serves"
        with self.pipeline.step("rollback") as step:
            version = self.put_back(self.previous_replica_set(self.current_revision() or "", None))
            revision = self.follow()
            step.detail.update(version=version, revision=revision)
        return f"rolled back to {version} (revision {revision}), which serves"

    def service_url(self) -> str:
        """Where the gate reaches the service: ``url``, else https://host, else the Service's load balancer."""
        from kubernetes import client

        s = self.settings
        if s.url:
            return s.url.rstrip("/")
        if s.host and not self.rehearsing:
            return f"https://{s.host}"
        core = client.CoreV1Api(self.api)
        deadline = time.monotonic() + s.timeout
        said = False
        while True:
            found = self.call(f"reading the Service {s.name}", core.read_namespaced_service, s.name, s.namespace)
            balancer = found.status.load_balancer if found.status else None
            for point in (balancer.ingress or []) if balancer else []:
                address = point.ip or point.hostname
                if address:
                    port = point.ports[0].port if point.ports else (found.spec.ports[0].port if found.spec.ports else SERVICE_PORT)
                    return f"http://{address}" + ("" if port == SERVICE_PORT else f":{port}")
            if time.monotonic() > deadline:
                raise DeployError(f"the Service {s.namespace}/{s.name} has no load balancer address after {s.timeout:g} s")
            if not said:
                self.pipeline.say(f"waiting for the Service {s.name}'s load balancer address")
                said = True
            time.sleep(POLL_SECONDS)


def _google_credentials() -> Any:
    """Google's default credentials, only asked for when the registry is Google's."""
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except google.auth.exceptions.DefaultCredentialsError:
        raise DeployError(
            "no Google credentials to push to the registry: run 'gcloud auth application-default login', or set "
            "GOOGLE_APPLICATION_CREDENTIALS; nothing was deployed"
        ) from None
    return credentials


def deploy(service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any]:
    if options.get("rehearse"):
        from macaron_gke.gke_rehearsal import rehearse

        return rehearse(service_path, config, options)
    return Gke(service_path, config, options).run()

