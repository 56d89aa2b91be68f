"""A local Cloud Run: the Admin API v2 REST surface on 127.0.0.1, whose revisions really run their image.

``macaron deploy cloudrun --rehearse`` and the tests of macaron-gke use it through the real ``google-cloud-run``
client (REST transport, ``api_endpoint`` pointed here). It speaks the wire protocol that client speaks: JSON
bodies parsed and written with the client's own message types (:mod:`google.cloud.run_v2`), long-running
operations as ``google.longrunning.Operation``, errors as Google's JSON error body. It keeps real state:

* services (create, get, update, delete), each update that changes the template makes a revision, named
  by ``template.revision``; the update's operation is done when every revision the traffic names is Ready;
  a revision that does not become Ready fails the operation and leaves the traffic as it was;
* revisions (get, list), with their ``Ready`` condition; each one runs its image through a *launcher*
  (podman, as ``macaron.image.run_image`` does) on a free 127.0.0.1 port, its environment resolved from the
  revision's variables and Secret Manager references (looked up in :attr:`CloudRun.secrets`), and is Ready
  once its startup probe's path answers 200;
* an OAuth token endpoint (``/token``) for the ``token_uri`` of a credentials file, and every API call needs
  the bearer token it handed out: no token, a 401, as Google answers.

Service and tag URLs (``http://<service>-<hash>.<region>.run.app``, ``http://<tag>---<service>-...``) do not
resolve here: an HTTP forward proxy (:attr:`CloudRunServer.proxy_url`) sends a request for the service's host
to a revision chosen by the traffic split, and one for a tag's host to that tag's revision.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import re
import secrets as token_source
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.any_pb2 import Any as AnyMessage

from macaron.deploying import free_port

TYPE_SERVICE = "type.googleapis.com/google.cloud.run.v2.Service"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
FAILED = run_v2.Condition.State.CONDITION_FAILED
RECONCILING = run_v2.Condition.State.CONDITION_RECONCILING


class Running(Protocol):
    def stop(self) -> None: ...


# launcher(image, port, environment) -> a running container serving on 127.0.0.1:port
Launcher = Callable[[str, int, dict[str, str]], Running]


class ApiError(Exception):
    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION"}

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.STATUS.get(self.code, "UNKNOWN")}}


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


@dataclass
class Revision:
    resource: run_v2.Revision
    environment: dict[str, str] = field(default_factory=dict)
    probe_path: str | None = None
    state: str = "stopped"  # stopped, starting, ready, failed
    message: str = ""
    port: int = 0
    container: Running | None = None
    stopped: threading.Event = field(default_factory=threading.Event)


@dataclass
class Operation:
    name: str
    service: str
    waits_for: list[str]
    traffic: list[run_v2.TrafficTarget]
    done: bool = False
    error: str | None = None
    deleting: bool = False


class CloudRun:
    """The state and the actions; :class:`CloudRunServer` puts them on HTTP."""

    def __init__(self, launcher: Launcher, *, secrets: dict[str, str] | None = None, ready_timeout: float = 60.0) -> None:
        self.launcher, self.ready_timeout = launcher, ready_timeout
        self.secrets: dict[str, str] = dict(secrets or {})  # Secret Manager: secret id -> latest value
        self.lock = threading.RLock()
        self.services: dict[str, run_v2.Service] = {}
        self.revisions: dict[str, Revision] = {}
        self.operations: dict[str, Operation] = {}
        self.tokens: set[str] = set()
        self.public_keys: list[str] = []  # of the service account keys handed out
        self.calls: list[str] = []
        self.traffic_log: list[tuple[str, list[tuple[str, int, str]]]] = []  # (service, [(revision, percent, tag)]) as applied

    # -- helpers ------------------------------------------------------------------------------------

    def _service(self, name: str) -> run_v2.Service:
        if name not in self.services:
            raise ApiError(404, f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' in region '{name.split('/')[3]}' does not exist.")
        return self.services[name]

    @staticmethod
    def host(name: str, tag: str | None = None) -> str:
        _, project, _, region, _, service = name.split("/")
        digest = hashlib.sha256(project.encode()).hexdigest()[:10]
        return f"{tag + '---' if tag else ''}{service}-{digest}.{region}.run.app"

    def route(self, host: str) -> int | None:
        """The port of a revision serving ``host`` now: a tag's revision, or one drawn by the traffic split."""
        with self.lock:
            for name, service in self.services.items():
                choices: list[tuple[str, int]] = []
                for target in service.traffic_statuses:
                    if target.tag and host == self.host(name, target.tag):
                        choices = [(target.revision, 1)]
                        break
                    if host == self.host(name) and target.percent:
                        choices.append((target.revision, target.percent))
                if choices:
                    revision = random.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]
                    found = self.revisions.get(f"{name}/revisions/{revision}")
                    return found.port if found and found.state == "ready" else None
        return None

    def _operation(self, service: str, waits_for: list[str], traffic: list[run_v2.TrafficTarget], *, deleting: bool = False) -> Operation:
        name = f"{service.rsplit('/services/', 1)[0]}/operations/{uuid.uuid4()}"
        operation = Operation(name, service, waits_for, traffic, deleting=deleting)
        self.operations[name] = operation
        self._advance(operation)
        return operation

    def operation_json(self, operation: Operation) -> dict[str, Any]:
        self._advance(operation)
        message = operations_pb2.Operation(name=operation.name, done=operation.done)
        service = self.services.get(operation.service)
        if service is not None:
            packed = AnyMessage(type_url=TYPE_SERVICE, value=run_v2.Service.serialize(service))
            message.metadata.CopyFrom(packed)
            if operation.done and not operation.error:
                message.response.CopyFrom(packed)
        if operation.error:
            message.error.code = 9  # FAILED_PRECONDITION
            message.error.message = operation.error
        answer: dict[str, Any] = json_format.MessageToDict(message, descriptor_pool=None)
        return answer

    # -- revisions ------------------------------------------------------------------------------------

    def _new_revision(self, service: run_v2.Service) -> str:
        template = service.template
        short = template.revision or f"{service.name.rsplit('/', 1)[-1]}-{len(self.revisions) + 1:05d}-{uuid.uuid4().hex[:3]}"
        service_id = service.name.rsplit("/", 1)[-1]
        if not short.startswith(f"{service_id}-") or not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", short):
            raise ApiError(400, f"template.revision '{short}' must start with '{service_id}-' and be a lowercase name of at most 63 characters")
        name = f"{service.name}/revisions/{short}"
        if name in self.revisions:
            raise ApiError(409, f"Revision named '{short}' with different configuration already exists.")
        if len(template.containers) != 1 or not template.containers[0].image:
            raise ApiError(400, "template.containers: exactly one container with an image")
        container = template.containers[0]
        environment: dict[str, str] = {}
        for variable in container.env:
            if "value_source" in variable:
                secret = variable.value_source.secret_key_ref.secret.rsplit("/", 1)[-1]
                if secret not in self.secrets:
                    raise ApiError(400, f"spec.template.spec.containers[0].env.value_from.secret_key_ref.name: Secret {secret} was not found")
                environment[variable.name] = self.secrets[secret]
            else:
                environment[variable.name] = variable.value
        resource = run_v2.Revision(
            name=name,
            uid=str(uuid.uuid4()),
            service=service.name.rsplit("/", 1)[-1],
            containers=list(template.containers),
            scaling=template.scaling,
            max_instance_request_concurrency=template.max_instance_request_concurrency,
            service_account=template.service_account,
            timeout=template.timeout,
            labels=dict(template.labels),
            annotations=dict(template.annotations),
            generation=1,
            reconciling=True,
        )
        resource.create_time = _now()
        probe = container.startup_probe.http_get.path if "startup_probe" in container and "http_get" in container.startup_probe else None
        self.revisions[name] = Revision(resource, environment, probe)
        return name

    def _start(self, revision: Revision) -> None:
        if revision.state in ("starting", "ready", "failed"):
            return
        revision.state, revision.message = "starting", ""
        revision.stopped = threading.Event()
        threading.Thread(target=self._run, args=(revision,), name=f"run-{revision.resource.name.rsplit('/', 1)[-1]}", daemon=True).start()

    def _run(self, revision: Revision) -> None:
        try:
            revision.port = free_port()
            revision.container = self.launcher(revision.resource.containers[0].image, revision.port, revision.environment)
        except Exception as exc:  # the launcher's failure is the revision's
            self._settle(revision, False, f"The user-provided container failed to start: {exc}")
            return
        deadline = time.monotonic() + self.ready_timeout
        while not revision.stopped.wait(0.3):
            if _answers(revision.port, revision.probe_path):
                self._settle(revision, True, "")
                return
            if time.monotonic() > deadline:
                self._settle(
                    revision,
                    False,
                    f"The user-provided container failed the configured startup probe checks ({revision.probe_path or 'TCP'} on port 8080) "
                    f"within the allocated timeout of {self.ready_timeout:g} s.",
                )
                return

    def _settle(self, revision: Revision, ready: bool, message: str) -> None:
        with self.lock:
            revision.state, revision.message = ("ready" if ready else "failed"), message
            resource = revision.resource
            resource.reconciling = False
            del resource.conditions[:]
            condition = run_v2.Condition(type_="Ready", state=SUCCEEDED if ready else FAILED, message=message)
            condition.last_transition_time = _now()
            resource.conditions.append(condition)
            resource.observed_generation = 1
            for operation in self.operations.values():
                self._advance(operation)

    def _stop(self, revision: Revision) -> None:
        revision.stopped.set()
        if revision.container is not None:
            with contextlib.suppress(Exception):
                revision.container.stop()
        revision.container, revision.port, revision.state = None, 0, "stopped"

    # -- services -----------------------------------------------------------------------------------

    def _resolve_traffic(self, service: run_v2.Service, latest: str | None) -> list[run_v2.TrafficTarget]:
        targets = list(service.traffic) or [run_v2.TrafficTarget(type_=LATEST, percent=100)]
        resolved, tags = [], set()
        for target in targets:
            if target.type_ == LATEST:
                if latest is None:
                    raise ApiError(400, "traffic: no revision to send LATEST traffic to")
                revision = latest.rsplit("/", 1)[-1]
            else:
                revision = target.revision
                if f"{service.name}/revisions/{revision}" not in self.revisions:
                    raise ApiError(400, f"traffic: Revision '{revision}' referenced in traffic not found.")
            if target.tag:
                if target.tag in tags:
                    raise ApiError(400, f"traffic: tag '{target.tag}' is used twice")
                tags.add(target.tag)
            resolved.append(run_v2.TrafficTarget(type_=REVISION, revision=revision, percent=target.percent, tag=target.tag))
        if sum(t.percent for t in resolved) != 100:
            raise ApiError(400, f"traffic: the percents add up to {sum(t.percent for t in resolved)}, not 100")
        return resolved

    def apply(self, service: run_v2.Service, previous: run_v2.Service | None) -> Operation:
        """Store ``service``; a new template makes a revision; the traffic moves when the operation is done."""
        latest = previous.latest_created_revision if previous is not None else None
        created = None
        if previous is None or run_v2.RevisionTemplate.to_json(service.template) != run_v2.RevisionTemplate.to_json(previous.template):
            created = self._new_revision(service)
            latest = created
        traffic = self._resolve_traffic(service, latest)
        stored = run_v2.Service(service)
        stored.uid = previous.uid if previous is not None else str(uuid.uuid4())
        stored.generation = previous.generation + 1 if previous is not None else 1
        stored.create_time = previous.create_time if previous is not None else _now()
        stored.update_time = _now()
        stored.uri = f"http://{self.host(service.name)}"
        stored.urls[:] = [stored.uri]
        stored.latest_created_revision = latest or ""
        stored.latest_ready_revision = previous.latest_ready_revision if previous is not None else ""
        stored.traffic_statuses[:] = list(previous.traffic_statuses) if previous is not None else []
        stored.reconciling = True
        stored.terminal_condition = run_v2.Condition(type_="Ready", state=RECONCILING)
        self.services[service.name] = stored
        waits = sorted({f"{service.name}/revisions/{t.revision}" for t in traffic if t.percent or t.tag} | ({created} if created else set()))
        for name in waits:
            self._start(self.revisions[name])
        return self._operation(service.name, waits, traffic)

    def _advance(self, operation: Operation) -> None:
        if operation.done:
            return
        service = self.services.get(operation.service)
        if service is None:
            operation.done = True
            return
        states = {name: self.revisions[name] for name in operation.waits_for}
        failed = next((r for r in states.values() if r.state == "failed"), None)
        if failed is None and not all(r.state == "ready" for r in states.values()):
            return
        operation.done = True
        service.reconciling = False
        latest = self.revisions.get(service.latest_created_revision)
        if latest is not None and latest.state == "ready":
            service.latest_ready_revision = latest.resource.name
        if failed is not None:
            operation.error = f"Revision '{failed.resource.name.rsplit('/', 1)[-1]}' is not ready and cannot serve traffic. {failed.message}"
            service.terminal_condition = run_v2.Condition(type_="Ready", state=FAILED, message=operation.error)
            return
        statuses = []
        for target in operation.traffic:
            status = run_v2.TrafficTargetStatus(type_=REVISION, revision=target.revision, percent=target.percent, tag=target.tag)
            if target.tag:
                status.uri = f"http://{self.host(service.name, target.tag)}"
            statuses.append(status)
        service.traffic_statuses[:] = statuses
        service.terminal_condition = run_v2.Condition(type_="Ready", state=SUCCEEDED)
        service.observed_generation = service.generation
        self.traffic_log.append((service.name, [(t.revision, t.percent, t.tag) for t in operation.traffic]))
        serving = {f"{service.name}/revisions/{t.revision}" for t in operation.traffic if t.percent or t.tag}
        for name, revision in self.revisions.items():  # a revision nothing routes to scales to zero
            if name.startswith(f"{service.name}/revisions/") and name not in serving and revision.state == "ready":
                self._stop(revision)

    # -- the API --------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if path == "/token" and method == "POST":
            assertion = parse_qs(body.decode()).get("assertion", [""])[-1]
            if not self._signed(assertion):
                raise ApiError(400, "invalid_grant: Invalid JWT Signature.")
            token = token_source.token_urlsafe(16)
            self.tokens.add(token)
            return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        bearer = (authorization or "").removeprefix("Bearer ")
        if not bearer or (bearer not in self.tokens and not self._signed(bearer)):
            raise ApiError(401, "Request is missing required authentication credential. Expected OAuth 2 access token.")
        match = re.fullmatch(r"/v2/(projects/[^/]+/locations/[^/]+)/(services|operations)(?:/([^/:]+))?(?:/revisions(?:/([^/]+))?)?(:wait)?", path)
        if match is None:
            raise ApiError(404, f"{method} {path} is not a Cloud Run Admin API v2 method this stand-in knows")
        parent, kind, item, revision, _wait = match.groups()
        with self.lock:
            self.calls.append(f"{method} {kind}{'/revisions' if '/revisions' in path else ''}")
            if kind == "operations":
                if item is None or f"{parent}/operations/{item}" not in self.operations:
                    raise ApiError(404, f"Operation {item} not found")
                return 200, self.operation_json(self.operations[f"{parent}/operations/{item}"])
            if "/revisions" in path:
                service = self._service(f"{parent}/services/{item}")
                if revision is None:
                    found = [r.resource for n, r in self.revisions.items() if n.startswith(f"{service.name}/revisions/")]
                    found.sort(key=lambda r: r.create_time.timestamp(), reverse=True)
                    return 200, {"revisions": [json.loads(run_v2.Revision.to_json(r)) for r in found]}
                name = f"{service.name}/revisions/{revision}"
                if name not in self.revisions:
                    raise ApiError(404, f"Revision '{revision}' does not exist.")
                return 200, json.loads(run_v2.Revision.to_json(self.revisions[name].resource))
            if method == "POST" and item is None:
                service = run_v2.Service.from_json(body or b"{}", ignore_unknown_fields=False)
                service.name = f"{parent}/services/{query.get('serviceId', '')}"
                if service.name in self.services:
                    raise ApiError(409, f"Resource '{query.get('serviceId')}' already exists.")
                return 200, self.operation_json(self.apply(service, None))
            name = f"{parent}/services/{item}"
            if method == "GET":
                return 200, json.loads(run_v2.Service.to_json(self._service(name)))
            if method == "PATCH":
                service = run_v2.Service.from_json(body or b"{}", ignore_unknown_fields=False)
                service.name = name
                previous = self.services.get(name)
                if previous is None and query.get("allowMissing") != "true":
                    self._service(name)
                return 200, self.operation_json(self.apply(service, previous))
            if method == "DELETE":
                self._service(name)
                for rev_name, rev in list(self.revisions.items()):
                    if rev_name.startswith(f"{name}/revisions/"):
                        self._stop(rev)
                        del self.revisions[rev_name]
                operation = self._operation(name, [], [], deleting=True)
                answer = self.operation_json(operation)
                del self.services[name]
                return 200, answer
        raise ApiError(404, f"{method} {path}: no such method")

    def _signed(self, token: str) -> bool:
        """Whether ``token`` is a JWT signed by one of the keys handed out (a self-signed JWT or a grant's assertion)."""
        from google.auth import jwt

        for key in self.public_keys:
            try:
                jwt.decode(token, certs=key, verify=True)  # type: ignore[no-untyped-call]
                return True
            except ValueError:
                continue
        return False

    def close(self) -> None:
        for revision in list(self.revisions.values()):
            self._stop(revision)


def _answers(port: int, path: str | None) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        if path is None:
            connection.connect()
            return True
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


# --- HTTP: the API, and the proxy that routes service and tag URLs ---------------------------------


def _api_handler(run: CloudRun) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            target = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(target.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, answer = run.handle(self.command, target.path, query, body, self.headers.get("Authorization"))
            except ApiError as exc:
                status, answer = exc.code, exc.body()
            except Exception as exc:  # a stand-in bug reaches the client as the 500 the real service would send
                status, answer = 500, ApiError(500, repr(exc)).body()
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


class Router(Protocol):
    def route(self, host: str) -> int | None: ...


def _proxy_handler(router: Router, *, label: str = "Cloud Run stand-in", unrouted: int = 404) -> type[BaseHTTPRequestHandler]:
    """An HTTP proxy sending each request to the 127.0.0.1 port ``router`` names for its host (``unrouted`` if none).

    The Kubernetes stand-in's Services use it too: each request is routed anew, so a kept-alive connection follows
    a rollout."""
    skipped = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "upgrade", "te", "trailer", "content-length"}

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _route(self) -> None:
            target = urlsplit(self.path)
            host = (target.hostname or self.headers.get("Host") or "").split(":")[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
            port = router.route(host)
            status, headers, data = unrouted, [("Content-Type", "text/plain")], f"{label}: nothing serves {host}\n".encode()
            if port is not None:
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    path = f"{target.path or '/'}{'?' + target.query if target.query else ''}"
                    upstream.request(self.command, path, body=body, headers={k: v for k, v in self.headers.items() if k.lower() not in skipped})
                    answer = upstream.getresponse()
                    status, headers, data = answer.status, [(k, v) for k, v in answer.getheaders() if k.lower() not in skipped], answer.read()
                except OSError as exc:
                    status, data = 503, f"{host}: {exc}\n".encode()
                finally:
                    upstream.close()
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route

    return Proxy


class CloudRunServer:
    """The stand-in on two 127.0.0.1 ports: ``endpoint_url`` for the client, ``proxy_url`` for HTTP clients."""

    def __init__(self, launcher: Launcher, *, secrets: dict[str, str] | None = None, ready_timeout: float = 60.0) -> None:
        self.run = CloudRun(launcher, secrets=secrets, ready_timeout=ready_timeout)
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _api_handler(self.run)), ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(self.run))]
        for server in self._servers:
            server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.proxy_url = f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    @contextlib.contextmanager
    def running(self) -> Iterator[CloudRunServer]:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            self.run.close()
            for server in self._servers:
                server.shutdown()
                server.server_close()

    def credentials_file(self, folder: Any, project: str) -> str:
        """A service account key file for GOOGLE_APPLICATION_CREDENTIALS, whose key this stand-in trusts.

        Google's clients sign their own JWTs with it (or trade one at this stand-in's ``token_uri``), as with a
        real key; the stand-in checks the signature with the public half.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        self.run.public_keys.append(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": uuid.uuid4().hex,
            "private_key": private,
            "client_email": f"macaron-deployer@{project}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.endpoint_url}/token",
        }
        path = f"{folder}/cloudrun-standin-key.json"
        with open(path, "w", encoding="utf-8") as out:
            json.dump(info, out)
        return path


# --- the rehearsal: the stand-in, a registry, and the environment that points Google's clients at them -----


def launch(image: str, port: int, environment: dict[str, str]) -> Running:
    """Start a revision's instance as Cloud Run does: pull the revision's image, run it."""
    from macaron.image import pull_image, run_image

    pull_image(image)
    return run_image(image, port, environment, wait=False)


@dataclass
class StandIn:
    registry: str
    server: CloudRunServer
    variables: dict[str, str]


@contextlib.contextmanager
def standin(folder: str, *, project: str = "rehearsal", secrets: dict[str, str] | None = None, ready_timeout: float = 60.0) -> Iterator[StandIn]:
    """The Cloud Run stand-in and a registry on 127.0.0.1, and the variables a deploy needs to use them."""
    from macaron.deploying import local_registry

    with local_registry() as registry, CloudRunServer(launch, secrets=secrets, ready_timeout=ready_timeout).running() as server:
        variables = {
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": server.endpoint_url,
            "GOOGLE_APPLICATION_CREDENTIALS": server.credentials_file(folder, project),
            "GOOGLE_CLOUD_PROJECT": project,
            "HTTP_PROXY": server.proxy_url,
            "http_proxy": server.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        yield StandIn(registry, server, variables)


@contextlib.contextmanager
def environment(variables: dict[str, str], unset: tuple[str, ...] = ("CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_QUOTA_PROJECT")) -> Iterator[None]:
    """``variables`` set in this process for the block, ``unset`` removed: a rehearsal never reaches Google."""
    import os

    before = dict(os.environ)
    os.environ.update(variables)
    for name in set(unset) - set(variables):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def rehearse(root: Any, config: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Three rounds, as a service lives: a first deploy, a canary update (50, 100), a rollback."""
    import os
    import tempfile
    from dataclasses import replace

    from macaron.deploying import DeployError, Pipeline
    from macaron.image import ImageError, base_image, default_base, find_tool, secret_names
    from macaron_gke.cloudrun import CloudRun, load_settings

    version = str(options.get("version") or config.get("version") or "local")
    update = f"{version}-rehearsal"
    pipeline = Pipeline("cloudrun", as_json=bool(options.get("json")))
    image = config.section("image")
    base = str(image.get("base") or default_base())
    if not find_tool(image.get("builder")).exists(base):  # before the proxy is set: debootstrap fetches from Debian's mirror
        pipeline.say(f"the base {base} is not in the image tool's storage: using 'macaron image base' (cached after the first time)")
        try:
            base = str(base_image(builder=image.get("builder"), progress=pipeline.say)["image"])
        except ImageError as exc:
            raise DeployError(str(exc)) from exc
    secrets = {name: os.environ.get(name, "") for name in secret_names(root, options.get("env"))}
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="macaron-cloudrun-") as folder, standin(folder, secrets=secrets) as stand_in, environment(stand_in.variables):
        settings = load_settings(config, str(config.get("name") or root.name), environ=dict(os.environ))
        settings = replace(settings, registry=f"{stand_in.registry}/rehearsal", timeout=min(settings.timeout, 180.0))

        def run(label: str, **extra: Any) -> dict[str, Any]:
            pipeline.say(f"rehearsal: {label}")
            summary = CloudRun(root, config, {**options, "dry_run": False, **extra}, settings=settings, pipeline=pipeline, base=base).run()
            rounds.append({"round": label, "url": summary.get("url"), "version": summary.get("version"), "revision": summary.get("revision")})
            return summary

        run(f"first deploy of {version}", version=version)
        run(f"canary update to {update} (50, 100)", version=update, canary="50,100")
        last = run("rollback", rollback=True, version=update)
        calls = len(stand_in.server.run.calls)
    return pipeline.summary(url=last.get("url"), rehearsal=True, rounds=rounds, cloudrun_calls=calls)
