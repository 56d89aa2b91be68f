"""``macaron deploy cloudrun``: a new revision with no traffic, gated by the service's own tests, then the traffic.

The pipeline (docs/deploy.md): check, image, revision, gate, traffic. The new revision is created with 0% of
the traffic and a tag of its own, so it has its own URL; the acceptance and contract tests run against that
URL; only when they pass does traffic move to it, at once or in ``--canary`` steps, with /ping and the error
rate checked between steps. Until then, and on any failure, what served the traffic keeps it all.
``--rollback`` gives the traffic back to the revision that had it before. Cloud Run is reached only through
the ``google-cloud-run`` v2 client (REST), with Google's default credentials; its endpoint is
``deploy.cloudrun.endpoint`` or ``CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import click
import requests

from macaron.config import Config
from macaron.deploying import DeployError, Pipeline, check_service, mask_environment, run_gate, wait_for_version
from macaron.image import ImageError, build_image, find_tool, secret_names

PORT = 8080
VERSION_ANNOTATION = "macaron.dev/version"
PREVIOUS_ANNOTATION = "macaron.dev/previous-revision"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
INGRESS = {"all": "INGRESS_TRAFFIC_ALL", "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY", "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}

# What docs/deploy.md documents, in the same order; each default is derived from the service where it can be.
DOCUMENTED = {
    "service": "Cloud Run service name (default: the service's name, lowercased, as Cloud Run allows)",
    "project": "Google Cloud project (required for a real deploy; GOOGLE_CLOUD_PROJECT, or the credentials' project)",
    "region": "region of the service",
    "registry": "registry to push the image to, host/path (default: <region>-docker.pkg.dev/<project>/macaron, Artifact Registry)",
    "concurrency": "requests one instance serves at once",
    "cpu": "CPU limit of an instance",
    "memory": "memory limit of an instance",
    "min_instances": "instances kept warm",
    "max_instances": "most instances the autoscaler starts",
    "ingress": "who may reach the service: all, internal, internal-and-cloud-load-balancing",
    "service_account": "service account the revisions run as (default: the project's compute default account)",
    "secrets": "Secret Manager secret of each env_secrets variable (mapping; default: a secret named as the variable), version latest",
    "environment": "non-secret environment variables for the service (mapping)",
    "health_check_path": "path of the startup and liveness probes; an instance is ready when it answers 200",
    "endpoint": "Cloud Run Admin API endpoint (default: CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN, else Google's)",
    "timeout": "seconds to wait for a revision to be Ready, and for a traffic change",
    "canary_probes": "requests to /ping through the service URL after each --canary step",
    "max_error_rate": "share of those requests allowed to fail (5xx or no answer) before the traffic goes back",
}


@dataclass(frozen=True)
class CloudRunSettings:
    service: str
    project: str | None = None
    region: str = "us-central1"
    registry: str | None = None
    concurrency: int = 80
    cpu: str = "1"
    memory: str = "512Mi"
    min_instances: int = 0
    max_instances: int = 10
    ingress: str = "all"
    service_account: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    health_check_path: str = "/ping"
    endpoint: str | None = None
    timeout: float = 600.0
    canary_probes: int = 20
    max_error_rate: float = 0.0

    @property
    def parent(self) -> str:
        return f"projects/{self.project or '<project>'}/locations/{self.region}"

    @property
    def name(self) -> str:
        return f"{self.parent}/services/{self.service}"

    def revision_name(self, version: str, revision: str | None) -> str:
        return _slug(f"{self.service}-{version}-{(revision or 'local')[:7]}")

    def image_registry(self) -> str:
        return self.registry or f"{self.region}-docker.pkg.dev/{self.project or '<project>'}/macaron"


def _slug(text: str, limit: int = 63) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    cleaned = cleaned[:limit].rstrip("-")
    return cleaned if cleaned[:1].isalpha() else f"s-{cleaned}"[:limit]


def tag_of(version: str) -> str:
    return _slug(f"v-{version}", 46)


def load_settings(config: Config, service_name: str, *, environ: dict[str, str] | None = None) -> CloudRunSettings:
    """Read ``deploy.cloudrun``; every setting has a default, so a dry run or a rehearsal needs no section."""
    section = config.section("deploy").section("cloudrun").to_dict()
    where = f"{config.where()}: deploy.cloudrun"
    unknown = sorted(set(section) - set(DOCUMENTED))
    if unknown:
        raise DeployError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(DOCUMENTED)})")
    types = {f.name: str(f.type) for f in fields(CloudRunSettings)}
    values: dict[str, Any] = {}
    for name, value in section.items():
        expected = types[name]
        if value is None:
            continue
        if expected == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise DeployError(f"{where}.{name}: a whole number >= 0, not {value!r}")
        if expected == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise DeployError(f"{where}.{name}: a number >= 0, not {value!r}")
        if expected == "dict[str, str]":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
                raise DeployError(f"{where}.{name}: a mapping of variable names to values")
            value = {str(k): str(v) for k, v in value.items()}
        if expected in ("str", "str | None"):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("cpu", "memory"):
                value = str(value)
            if not isinstance(value, str):
                raise DeployError(f"{where}.{name}: a string, not {value!r}")
        values[name] = value
    service = _slug(values.pop("service", service_name), 49)
    settings = CloudRunSettings(service=service, **values)
    if settings.ingress not in INGRESS:
        raise DeployError(f"{where}.ingress: one of {', '.join(INGRESS)}, not {settings.ingress!r}")
    if settings.min_instances > settings.max_instances or settings.max_instances == 0:
        raise DeployError(f"{where}: min_instances ({settings.min_instances}) must be <= max_instances ({settings.max_instances}), and max_instances >= 1")
    if settings.concurrency < 1 or settings.concurrency > 1000:
        raise DeployError(f"{where}.concurrency: 1 to 1000, not {settings.concurrency}")
    secrets = set(secret_names(config.root, config.env)) if config.root else set()
    clash = sorted(set(settings.environment) & secrets)
    if clash:
        raise DeployError(f"{where}.environment: {', '.join(clash)} are env_secrets: they come from Secret Manager")
    stray = sorted(set(settings.secrets) - secrets)
    if stray:
        raise DeployError(f"{where}.secrets: {', '.join(stray)} are not env_secrets of the service")
    env = environ or {}
    endpoint = settings.endpoint or env.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN") or None
    project = settings.project or env.get("GOOGLE_CLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT") or None
    return replace(settings, endpoint=endpoint.rstrip("/") if endpoint else None, project=project)


def parse_canary(text: str | None) -> list[int]:
    if not text:
        return [100]
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise DeployError(f"--canary {text}: percents separated by commas, e.g. 10,50,100") from None
    if not steps or steps[-1] != 100 or any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= 0:
        raise DeployError(f"--canary {text}: increasing percents between 1 and 100, the last one 100")
    return steps


def deploy_options() -> list[click.Parameter]:
    return [
        click.Option(["--rollback"], is_flag=True, help="Give all the traffic back to the revision that had it before, at once."),
        click.Option(["--canary"], default=None, metavar="STEPS", help="Move the traffic in steps, e.g. 10,50,100, checking /ping and the error rate between them."),
    ]


def _api_error(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"


class CloudRun:
    """One ``macaron deploy cloudrun`` run: deploy, or roll back."""

    def __init__(
        self,
        root: Path,
        config: Config,
        options: dict[str, Any],
        *,
        settings: CloudRunSettings | None = None,
        pipeline: Pipeline | None = None,
        base: str | None = None,
    ) -> None:
        self.root, self.config, self.options = root, config, options
        self.version = str(options.get("version") or config.get("version") or "local")
        self.env = options.get("env")
        self.settings = settings or load_settings(config, str(config.get("name") or root.name), environ=dict(os.environ))
        self.pipeline = pipeline or Pipeline("cloudrun", as_json=bool(options.get("json")))
        self.base = base
        self.secrets: dict[str, str] = {}
        self.credentials: Any = None
        self._services: Any = None
        self._revisions: Any = None

    # -- Google ------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Find the credentials and the project: local look-ups only (no token is fetched yet)."""
        import google.auth
        import google.auth.exceptions
        from google.api_core.client_options import ClientOptions
        from google.cloud import run_v2

        try:
            credentials, found_project = google.auth.default(scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError:
            raise DeployError(
                "no Google credentials: run 'gcloud auth application-default login', or set GOOGLE_APPLICATION_CREDENTIALS "
                "to a service account's key file (docs/deploy.md lists the roles needed); nothing was deployed"
            ) from None
        if not self.settings.project:
            if not found_project:
                raise DeployError("no Google Cloud project: set deploy.cloudrun.project in macaron.yaml, or GOOGLE_CLOUD_PROJECT; nothing was deployed")
            self.settings = replace(self.settings, project=found_project)
        self.credentials = credentials
        options = ClientOptions(api_endpoint=self.settings.endpoint) if self.settings.endpoint else None
        self._services = run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)
        self._revisions = run_v2.RevisionsClient(credentials=credentials, transport="rest", client_options=options)

    def call(self, client: Any, method: str, **arguments: Any) -> Any:
        from google.api_core import exceptions
        from google.auth import exceptions as auth_exceptions

        try:
            return getattr(client, method)(**arguments)
        except (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
            raise DeployError(f"{method}: {_api_error(exc)}") from exc

    def current(self) -> Any:
        from google.api_core import exceptions
        from google.auth import exceptions as auth_exceptions

        try:
            return self._services.get_service(name=self.settings.name)
        except exceptions.NotFound:
            return None
        except (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
            raise DeployError(f"get_service: {_api_error(exc)}") from exc

    def wait(self, operation: Any, what: str) -> Any:
        """Follow a long-running operation until it is done, or the deadline passes."""
        from google.api_core import exceptions

        try:
            return operation.result(timeout=self.settings.timeout)
        except concurrent.futures.TimeoutError:
            raise DeployError(f"{what}: not done after {self.settings.timeout:g} s") from None
        except exceptions.GoogleAPICallError as exc:
            raise DeployError(f"{what}: {exc.message}") from exc

    # -- what to deploy ----------------------------------------------------------------------------

    def template(self, image: str, revision: str) -> Any:
        from google.cloud import run_v2

        s = self.settings
        env = [run_v2.EnvVar(name=name, value=value) for name, value in sorted(self.variables().items())]
        for name in sorted(self.secret_names()):
            reference = run_v2.SecretKeySelector(secret=s.secrets.get(name, name), version="latest")
            env.append(run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=reference)))
        probe = run_v2.Probe(http_get=run_v2.HTTPGetAction(path=s.health_check_path), period_seconds=1, failure_threshold=240, timeout_seconds=1)
        container = run_v2.Container(
            image=image,
            ports=[run_v2.ContainerPort(container_port=PORT)],
            env=env,
            resources=run_v2.ResourceRequirements(limits={"cpu": s.cpu, "memory": s.memory}),
            startup_probe=probe,
            liveness_probe=run_v2.Probe(http_get=run_v2.HTTPGetAction(path=s.health_check_path), period_seconds=10),
        )
        return run_v2.RevisionTemplate(
            revision=revision,
            containers=[container],
            scaling=run_v2.RevisionScaling(min_instance_count=s.min_instances, max_instance_count=s.max_instances),
            max_instance_request_concurrency=s.concurrency,
            service_account=s.service_account or "",
            annotations={VERSION_ANNOTATION: self.version},
        )

    def variables(self) -> dict[str, str]:
        return {**self.settings.environment, "MACARON_VERSION": self.version, **({"MACARON_ENV": self.env} if self.env else {})}

    def secret_names(self) -> list[str]:
        return secret_names(self.root, self.env)

    # -- commands ----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.options.get("rollback"):
            return self.rollback()
        if self.options.get("dry_run"):
            return self.dry_run()
        return self.deploy()

    def dry_run(self) -> dict[str, Any]:
        from google.cloud import run_v2

        with self.pipeline.step("check"):
            checked = check_service(self.root, self.env, gate=False)
            self.pipeline.secrets.update(checked.secrets)
            steps = parse_canary(self.options.get("canary"))
        s = self.settings
        revision = s.revision_name(self.version, checked.commit.revision if checked.commit else None)
        image = f"{s.image_registry()}/{self.config.get('name')}:{self.version}"
        template = run_v2.RevisionTemplate.to_dict(self.template(image, revision))
        plan = {
            "service": s.name,
            "project": s.project or "(not set: GOOGLE_CLOUD_PROJECT or deploy.cloudrun.project)",
            "region": s.region,
            "version": self.version,
            "revision": revision,
            "tag": tag_of(self.version),
            "image": image,
            "ingress": INGRESS[s.ingress],
            "traffic_steps": steps,
            "environment": mask_environment({**self.variables(), **checked.secrets}, list(checked.secrets)),
            "secrets": {name: f"secret {s.secrets.get(name, name)}, version latest" for name in checked.secrets},
            "template": template,
        }
        for key, value in plan.items():
            if key != "template":
                self.pipeline.say(f"would deploy: {key} = {value}")
        return self.pipeline.summary(dry_run=True, plan=plan)

    def deploy(self) -> dict[str, Any]:
        from google.cloud import run_v2

        s = self.settings
        with self.pipeline.step("check") as step:
            steps = parse_canary(self.options.get("canary"))
            checked = check_service(self.root, self.env)
            self.secrets = checked.secrets
            self.pipeline.secrets.update(checked.secrets)
            self.connect()
            s = self.settings
            step.detail["revision"] = checked.commit.revision[:12] if checked.commit else "none"
        revision = s.revision_name(self.version, checked.commit.revision if checked.commit else None)
        tag = tag_of(self.version)
        with self.pipeline.step("image") as step:
            registry = self.registry()
            try:
                built = build_image(self.root, version=self.version, base=self.base, push=registry, progress=lambda line: self.pipeline.say(f"  {line}"))
            except ImageError as exc:
                raise DeployError(str(exc)) from exc
            assert built.pushed is not None
            step.detail.update(image=built.pushed, id=built.id[:19])
        live = self.current()
        previous = self.split(live)
        if any(name == revision for name, _ in previous):
            raise DeployError(f"revision {revision} serves traffic already; deploy another version or commit, or --rollback")
        with self.pipeline.step("revision") as step:
            template = self.template(built.pushed, revision)
            if live is None:
                service = run_v2.Service(
                    template=template,
                    ingress=getattr(run_v2.IngressTraffic, INGRESS[s.ingress]),
                    labels={"managed-by": "macaron"},
                    traffic=[run_v2.TrafficTarget(type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, revision=revision, percent=100, tag=tag)],
                )
                operation = self.call(self._services, "create_service", parent=s.parent, service=service, service_id=s.service)
                self.pipeline.say(f"creating the service {s.service} with revision {revision} (first deploy)")
            else:
                live.template = template
                live.ingress = getattr(run_v2.IngressTraffic, INGRESS[s.ingress])
                live.traffic = [*self.traffic(previous, [], keep_tags=live, drop_tag=tag), self.target(revision, 0, tag)]
                operation = self.call(self._services, "update_service", service=live)
                self.pipeline.say(f"creating revision {revision} with no traffic, tag {tag}")
            try:
                self.wait(operation, f"revision {revision}")
                self.ready(revision)
            except DeployError as exc:
                raise DeployError(f"{exc}; {self.unchanged(live)}") from exc
            tag_url = self.tag_url(tag)
            step.detail.update(revision=revision, url=tag_url)
        with self.pipeline.step("gate") as step:
            gate = run_gate(tag_url, self.root, env=self.env, secrets=self.secrets)
            step.detail["tests"] = "passed" if gate.passed else "FAILED"
            if not gate.passed:
                self.pipeline.say(f"the gate's report (last lines):\n{gate.tail()}")
                step.ok = False
        if not gate.passed:
            raise DeployError(f"acceptance or contract tests failed against revision {revision} ({tag_url}); {self.unchanged(live)}")
        with self.pipeline.step("traffic") as step:
            url = self.move(revision, tag, previous, steps)
            step.detail.update(url=url, steps=",".join(map(str, steps)))
            step.detail["waited"] = wait_for_version(url, self.version, timeout=s.timeout, interval=1.0, progress=self.pipeline.say)
        return self.pipeline.summary(url=url, version=self.version, revision=revision, tag_url=tag_url, previous=previous[0][0] if previous else None, image=built.pushed)

    # -- pieces ------------------------------------------------------------------------------------

    def registry(self) -> str:
        registry = self.settings.image_registry()
        login_to_google_registry(registry, lambda: self.credentials, self.config.section("image").get("builder"), self.pipeline)
        return registry

    @staticmethod
    def split(service: Any) -> list[tuple[str, int]]:
        """The revisions serving ``service``'s traffic now, and their percents, the largest first."""
        if service is None:
            return []
        serving = [(t.revision, t.percent) for t in service.traffic_statuses if t.percent and t.revision]
        return sorted(serving, key=lambda item: -item[1])

    @staticmethod
    def target(revision: str, percent: int, tag: str = "") -> Any:
        from google.cloud import run_v2

        kind = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        return run_v2.TrafficTarget(type_=kind, revision=revision, percent=percent, tag=tag)

    def traffic(self, previous: list[tuple[str, int]], taken: list[tuple[str, int, str]], *, keep_tags: Any = None, drop_tag: str = "") -> list[Any]:
        """``taken`` (revision, percent, tag), and what is left of 100 shared by ``previous`` in its proportions."""
        left = 100 - sum(p for _, p, _ in taken)
        total = sum(p for _, p in previous) or 1
        shares = [(name, left * p // total) for name, p in previous]
        if shares:
            shares[0] = (shares[0][0], shares[0][1] + left - sum(p for _, p in shares))
        tags = {t.revision: t.tag for t in keep_tags.traffic_statuses if t.tag and t.tag != drop_tag} if keep_tags is not None else {}
        targets = [self.target(name, percent, tag) for name, percent, tag in taken]
        named = {name for name, _, _ in taken}
        targets += [self.target(name, percent, tags.get(name, "")) for name, percent in shares if name not in named and (percent or tags.get(name))]
        targets += [self.target(name, 0, tag) for name, tag in tags.items() if name not in named and name not in dict(shares)]
        return targets

    def ready(self, revision: str) -> None:
        """The revision's Ready condition, as the revisions API reports it."""
        from google.cloud import run_v2

        found = self.call(self._revisions, "get_revision", name=f"{self.settings.name}/revisions/{revision}")
        ready = next((c for c in found.conditions if c.type_ == "Ready"), None)
        if ready is None or ready.state != run_v2.Condition.State.CONDITION_SUCCEEDED:
            raise DeployError(f"revision {revision} is not Ready: {ready.message if ready is not None else 'no Ready condition'}")

    def tag_url(self, tag: str) -> str:
        service = self.current()
        found = next((t.uri for t in (service.traffic_statuses if service else []) if t.tag == tag and t.uri), None)
        if not found:
            raise DeployError(f"the service reports no URL for the tag {tag}")
        return str(found)

    def unchanged(self, live: Any) -> str:
        if live is None:
            self.call(self._services, "delete_service", name=self.settings.name)
            return f"the service {self.settings.service} was new: deleted, nothing serves"
        serving = ", ".join(f"{name} {percent}%" for name, percent in self.split(live))
        return f"no traffic moved: {serving or 'nothing'} still serves"

    def set_traffic(self, targets: list[Any], annotations: dict[str, str] | None = None) -> Any:
        service = self.current()
        if service is None:
            raise DeployError(f"the service {self.settings.name} is gone")
        service.traffic = targets
        for key, value in (annotations or {}).items():
            service.annotations[key] = value
        self.wait(self.call(self._services, "update_service", service=service), "the traffic change")
        return self.current()

    def move(self, revision: str, tag: str, previous: list[tuple[str, int]], steps: list[int]) -> str:
        """Traffic to ``revision`` in ``steps``; between two steps /ping and the error rate through the service URL."""
        url = ""
        for percent in steps:
            final = percent == 100
            annotations = {PREVIOUS_ANNOTATION: previous[0][0]} if final and previous else None
            service = self.set_traffic(self.traffic(previous, [(revision, percent, tag)]), annotations)
            url = str(service.uri)
            self.pipeline.say(f"traffic: {revision} {percent}%" + "".join(f", {n} {p}%" for n, p in self.split(service) if n != revision))
            if not final:
                failed, probes = self.probe(url)
                rate = failed / probes
                self.pipeline.say(f"  /ping through {url}: {probes - failed}/{probes} answered 200 (error rate {rate:.0%})")
                if rate > self.settings.max_error_rate:
                    self.set_traffic(self.traffic(previous, []))
                    raise DeployError(
                        f"canary at {percent}%: error rate {rate:.0%} above {self.settings.max_error_rate:.0%}; "
                        f"the traffic went back: {', '.join(f'{n} {p}%' for n, p in previous)}"
                    )
        return url

    def probe(self, url: str) -> tuple[int, int]:
        failed = 0
        session = requests.Session()
        for _ in range(max(1, self.settings.canary_probes)):
            try:
                if session.get(f"{url}/ping", timeout=5).status_code >= 500:
                    failed += 1
            except requests.RequestException:
                failed += 1
        return failed, max(1, self.settings.canary_probes)

    def rollback(self) -> dict[str, Any]:
        with self.pipeline.step("check"):
            self.connect()
        with self.pipeline.step("rollback") as step:
            live = self.current()
            serving = self.split(live)
            if live is None or not serving:
                raise DeployError(f"the service {self.settings.name} serves nothing: nothing to roll back")
            now = serving[0][0]
            before = live.annotations.get(PREVIOUS_ANNOTATION)
            if not before or before == now:
                raise DeployError(f"no revision had the traffic before {now}: it keeps it")
            found = self.call(self._revisions, "get_revision", name=f"{self.settings.name}/revisions/{before}")
            version = found.annotations.get(VERSION_ANNOTATION, "")
            service = self.set_traffic([self.target(before, 100)], {PREVIOUS_ANNOTATION: now})
            url = str(service.uri)
            self.pipeline.say(f"traffic: {before} 100% (was {now})")
            if version:
                step.detail["waited"] = wait_for_version(url, version, timeout=self.settings.timeout, interval=1.0, progress=self.pipeline.say)
            step.detail.update(revision=before, version=version)
        return self.pipeline.summary(url=url, version=version, revision=before, previous=now)


def login_to_google_registry(registry: str, credentials: Callable[[], Any], builder: str | None, pipeline: Pipeline) -> None:
    """For Artifact Registry or gcr.io, the image tool logs in with the credentials' access token (on stdin, masked)."""
    host = registry.split("/", 1)[0]
    if not host.endswith(("pkg.dev", "gcr.io")):
        return
    import google.auth.transport.requests

    found = credentials()
    found.refresh(google.auth.transport.requests.Request())
    token = str(found.token)
    pipeline.secrets["access token"] = token
    tool = find_tool(builder).runner
    done = subprocess.run([tool.path, "login", "--username", "oauth2accesstoken", "--password-stdin", host], input=token, capture_output=True, text=True)
    if done.returncode != 0:
        raise DeployError(f"logging in to {host} failed: {pipeline.mask(done.stderr.strip())}")


def deploy(service_path: Path, config: Config, options: dict[str, Any]) -> dict[str, Any]:
    if options.get("rehearse"):
        from macaron_gke.cloudrun_standin import rehearse

        return rehearse(service_path, config, options)
    return CloudRun(service_path, config, options).run()
