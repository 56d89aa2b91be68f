"""A local Kubernetes API: the REST wire protocol of the ``kubernetes`` client on 127.0.0.1, whose Deployments really run.

``macaron deploy gke --rehearse`` and the tests of macaron-gke use it through the official ``kubernetes`` client,
loaded from a kubeconfig as for a real cluster; no client is mocked. Contract (the ``gke`` target relies on it):

* ``KubeStandin(workdir, *, progress_deadline_cap=None)`` is a context manager: ``__enter__`` starts the API server
  and the controller, ``__exit__`` stops them and removes every container it started. ``.url`` is
  ``http://127.0.0.1:PORT``; ``.write_kubeconfig(path, namespace="default")`` writes a kubeconfig (cluster
  ``server`` = ``.url``, a user with a bearer token, context ``standin``, current) for
  ``kubernetes.config.load_kube_config(config_file=path, context="standin")``. A request without that token gets
  401 with a ``Status`` body.
* Resources, each with ``metadata.uid``, ``resourceVersion``, ``creationTimestamp`` and ``generation`` (bumped when
  the spec changes): core ``v1`` namespaces (cluster-scoped), secrets (``stringData`` folded into base64 ``data``),
  services, pods (read only: one per container the controller runs), events (written by the controller);
  ``apps/v1`` deployments (with ``/status``) and replicasets (read only, owned by their Deployment, annotated
  ``deployment.kubernetes.io/revision``); ``autoscaling/v2`` horizontalpodautoscalers; ``policy/v1``
  poddisruptionbudgets; ``networking.k8s.io/v1`` ingresses; ``networking.gke.io/v1`` managedcertificates and
  ``cloud.google.com/v1`` backendconfigs (custom objects, for ``CustomObjectsApi``). Verbs: get, list (label and
  field selectors ``metadata.name``/``metadata.namespace``), watch (``?watch=true``), create, update (a stale
  ``resourceVersion`` is a 409 Conflict), patch, delete (a Namespace or a Deployment takes what it owns with it),
  and ``?dryRun=All``. Errors are ``Status`` objects the client raises as ``ApiException``: 400 BadRequest, 401,
  404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists / Conflict, 422 Invalid (with ``details.causes``).
* Discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/GROUP``, ``/apis/GROUP/VERSION``), so
  ``kubernetes.dynamic.DynamicClient`` works, ``server_side_apply`` included.
* Patches: ``application/apply-patch+yaml`` (server-side apply; ``fieldManager`` required, ``force`` accepted,
  absent objects created), ``application/merge-patch+json`` (RFC 7386), ``application/strategic-merge-patch+json``
  (a merge patch whose lists of objects with a ``name`` merge by name, ``$patch: replace|delete`` honoured) and
  ``application/json-patch+json`` (RFC 6902). Server-side apply here: the fields a manager applies replace the
  object's; the ones it applied last time and leaves out now are removed; lists are atomic; others' fields and
  ``status`` stay; conflicts between managers are never reported.
* The controller (a thread) acts as the Deployment controller in a RollingUpdate with maxUnavailable 0: each new
  pod template (defaulted, hashed as ``pod-template-hash``) gets a ReplicaSet with revision N+1; a template that
  an older ReplicaSet already has reuses that ReplicaSet, which gets the next revision (a rollback, as in
  Kubernetes). It runs **one** podman container for the new template (standing for all ``spec.replicas``):
  the first container's image (pulled if not stored), ``command``/``args``, ``env`` with ``valueFrom``
  (``secretKeyRef`` from the stored Secret, ``fieldRef`` metadata.name/namespace, status.podIP), ``envFrom``
  ``secretRef``; host networking, so ``PORT`` is set to a free 127.0.0.1 port (whatever the container port) and a
  ``0.0.0.0`` in the image's default arguments becomes ``127.0.0.1``. It is ready when the ``startupProbe`` and
  ``readinessProbe`` ``httpGet`` paths answer 200 on that port (with no probe: when the port accepts). Then the
  Deployment's status says updated/ready/available = ``spec.replicas``, ``Available=True`` and
  ``Progressing=True`` (``NewReplicaSetAvailable``), and the old version's container stops (after it stopped
  receiving requests). A container that does not become ready within ``spec.progressDeadlineSeconds`` (capped
  by ``progress_deadline_cap``) — one that exits counts as never ready — gives ``Progressing=False``
  (``ProgressDeadlineExceeded``) and is stopped, and the old container keeps serving.
* Each Service gets an HTTP proxy on a free 127.0.0.1 port, sending every request to the ready container whose
  pod labels match the Service's selector (503 when none is); its status is
  ``loadBalancer.ingress: [{ip: "127.0.0.1", ports: [{port: PROXY_PORT, protocol: TCP}]}]`` whatever its type, so
  a gate URL is ``http://{ip}:{ports[0].port}``. An Ingress gets the same address as the Service of its default
  backend (or first rule), and a ManagedCertificate becomes ``Active``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import http.client
import json
import re
import secrets as token_source
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from macaron.deploying import free_port
from macaron_gke.cloudrun_standin import _proxy_handler

Json = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CONTAINER_LABEL = "macaron.k8s-standin"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString alphabet
NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
READ_VERBS = ["get", "list", "watch"]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a /status subresource
    read_only: bool = False  # written by the controller only

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """As Kubernetes names it in messages: ``deployments.apps``, ``secrets``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[Json]:
        verbs = READ_VERBS if self.read_only else ALL_VERBS
        entry: Json = {"name": self.plural, "singularName": self.kind.lower(), "namespaced": self.namespaced, "kind": self.kind, "verbs": verbs}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        entries = [entry]
        if self.status:
            entries.append({"name": f"{self.plural}/status", "singularName": "", "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return entries


KINDS = [
    Kind("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), status=True),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "services", "Service", short_names=("svc",), status=True),
    Kind("", "v1", "pods", "Pod", short_names=("po",), status=True, read_only=True),
    Kind("", "v1", "events", "Event", short_names=("ev",)),
    Kind("apps", "v1", "deployments", "Deployment", short_names=("deploy",), status=True),
    Kind("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), status=True, read_only=True),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",), status=True),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), status=True),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), status=True),
    Kind("networking.gke.io", "v1", "managedcertificates", "ManagedCertificate", short_names=("mcrt",), status=True),
    Kind("cloud.google.com", "v1", "backendconfigs", "BackendConfig", short_names=("bc",)),
]
BY_PLURAL = {(k.group, k.version, k.plural): k for k in KINDS}
BY_GROUP_PLURAL = {(k.group, k.plural): k for k in KINDS}
NAMESPACE, SECRET, SERVICE, POD, EVENT, DEPLOYMENT, REPLICASET, AUTOSCALER, BUDGET, INGRESS, CERTIFICATE, _ = KINDS
Key = tuple[str, str, str, str]  # (group, plural, namespace or "", name)


class ApiError(Exception):
    """An error the API answers with, as a ``Status`` object."""

    REASONS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid"}

    def __init__(self, code: int, message: str, *, reason: str | None = None, details: Json | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.details = code, message, reason or self.REASONS.get(code, "InternalError"), details

    def status(self) -> Json:
        body: Json = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, f'{kind.resource} "{name}" not found', details={"name": name, "group": kind.group, "kind": kind.plural})


def invalid(kind: Kind, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid, one cause per (field, message)."""
    text = "; ".join(f"{where}: {what}" for where, what in causes)
    details = {"name": name, "group": kind.group, "kind": kind.kind, "causes": [{"reason": "FieldValueInvalid", "message": what, "field": where} for where, what in causes]}
    return ApiError(422, f'{kind.kind}.{kind.group or "core"} "{name}" is invalid: {text}', details=details)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- patches --------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A merge patch whose lists of objects with a ``name`` merge item by item; ``$patch: replace|delete`` honoured."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        return result
    if isinstance(patch, list) and isinstance(target, list) and _named(patch) and _named(target):
        merged = [copy.deepcopy(item) for item in target]
        for item in patch:
            index = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del merged[index]
            elif index is None:
                merged.append(strategic_merge_patch({}, item))
            else:
                merged[index] = strategic_merge_patch(merged[index], item)
        return merged
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise ApiError(
            400,
            "a JSON patch (application/json-patch+json) is a list of operations; send an object as "
            "application/merge-patch+json or application/strategic-merge-patch+json",
        )
    document = copy.deepcopy(document)

    def parts(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise ApiError(422, f"the JSON pointer {pointer!r} does not start with /")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def walk(path: list[str]) -> tuple[Any, str]:
        node = document
        for part in path[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, path[-1]

    def get(pointer: str) -> Any:
        node = document
        for part in parts(pointer):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def remove(pointer: str) -> Any:
        parent, last = walk(parts(pointer))
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    def add(pointer: str, value: Any, replace: bool = False) -> None:
        nonlocal document
        path = parts(pointer)
        if not path:
            document = value
            return
        parent, last = walk(path)
        if isinstance(parent, list):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(len(parent) if last == "-" else int(last), value)
        else:
            if replace and last not in parent:
                raise KeyError(last)
            parent[last] = value

    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        try:
            if op == "add":
                add(path, copy.deepcopy(operation["value"]))
            elif op == "remove":
                remove(path)
            elif op == "replace":
                add(path, copy.deepcopy(operation["value"]), replace=True)
            elif op == "move":
                add(path, remove(operation["from"]))
            elif op == "copy":
                add(path, copy.deepcopy(get(operation["from"])))
            elif op == "test":
                if get(path) != operation["value"]:
                    raise ApiError(422, f"the JSON patch test at {path} failed")
            else:
                raise ApiError(400, f"unknown JSON patch operation {op!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, f"the JSON patch operation {op} at {path!r} does not apply: {exc!r}") from exc
    return document


def apply_fields(current: Any, applied: Any, previous: Any) -> Any:
    """Server-side apply of one manager's fields: ``applied`` replaces, what ``previous`` had and ``applied`` drops goes."""
    if not isinstance(applied, dict) or not isinstance(current, dict):
        return copy.deepcopy(applied)
    previous = previous if isinstance(previous, dict) else {}
    result = dict(current)
    for key in previous:
        if key not in applied:
            result.pop(key, None)
    for key, value in applied.items():
        result[key] = apply_fields(current.get(key), value, previous.get(key))
    return result


# --- selectors -----------------------------------------------------------------------------------------


def label_matcher(selector: str | None) -> Any:
    """A predicate on a label map from a ``labelSelector`` (``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``)."""
    if not selector:
        return lambda labels: True
    tests = []
    for term in re.split(r",(?![^()]*\))", selector):
        term = term.strip()
        if match := re.fullmatch(r"(\S+?)\s+(in|notin)\s+\((.*)\)", term):
            key, operator, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            tests.append((key, operator, values))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            tests.append((key.strip(), "notin", {value.strip()}))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            tests.append((key.strip(), "in", {value.strip()}))
        elif term.startswith("!"):
            tests.append((term[1:], "absent", set()))
        elif term:
            tests.append((term, "present", set()))

    def matches(labels: dict[str, str]) -> bool:
        for key, operator, values in tests:
            if operator == "in" and labels.get(key) not in values:
                return False
            if operator == "notin" and key in labels and labels[key] in values:
                return False
            if operator == "present" and key not in labels:
                return False
            if operator == "absent" and key in labels:
                return False
        return True

    return matches


def selector_matches(selector: Json | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (``matchLabels``, ``matchExpressions``) against labels; an empty one matches nothing."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and labels.get(key) in values):
            return False
        if (operator == "Exists" and key not in labels) or (operator == "DoesNotExist" and key in labels):
            return False
    return True


def template_hash(template: Json) -> str:
    """The ``pod-template-hash`` of a (defaulted) pod template: the same template, the same hash."""
    bare = copy.deepcopy(template)
    labels = bare.get("metadata", {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    number = int.from_bytes(hashlib.sha256(json.dumps(bare, sort_keys=True).encode()).digest()[:8], "big")
    text = ""
    for _ in range(10):
        number, digit = divmod(number, len(SAFE_ALPHABET))
        text += SAFE_ALPHABET[digit]
    return text


# --- the containers -------------------------------------------------------------------------------------


@dataclass
class Pod:
    """One container run for a ReplicaSet (standing for all its replicas)."""

    name: str
    namespace: str
    replicaset: str
    template_hash: str
    labels: dict[str, str]
    container: Json
    probes: list[str]  # httpGet paths that must answer 200; empty: the port accepting is enough
    grace: int = 10
    pod_spec: Json = field(default_factory=dict)
    port: int = 0
    state: str = "Pending"  # Pending, Running (not ready yet), Ready, Failed, Terminating, Stopped
    reason: str = "ContainerCreating"
    message: str = ""
    restarts: int = 0
    created: str = field(default_factory=now)
    started: float = field(default_factory=time.monotonic)
    changed: float = field(default_factory=time.monotonic)  # when the state last changed
    container_name: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def ready(self) -> bool:
        return self.state == "Ready"


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


# --- the stand-in ---------------------------------------------------------------------------------------


@dataclass
class Rollout:
    template_hash: str
    started: float
    deadline: float
    failed: bool = False  # the deadline passed first
    completed: bool = False  # the template's container was ready once: later crashes are restarts, not a stalled rollout


class _ServiceRouter:
    """The ``route`` of a Service's proxy: the port of a ready container its selector matches, looked up per request."""

    def __init__(self, standin: KubeStandin, namespace: str, name: str) -> None:
        self.standin, self.namespace, self.name = standin, namespace, name

    def route(self, host: str) -> int | None:
        return self.standin.backend(self.namespace, self.name)


class KubeStandin:
    """The Kubernetes API stand-in on 127.0.0.1 (see the module's docstring for what it does)."""

    def __init__(self, workdir: Path, *, progress_deadline_cap: float | None = None) -> None:
        self.workdir = Path(workdir)
        self.progress_deadline_cap = progress_deadline_cap
        self.token = token_source.token_urlsafe(24)
        self.instance = uuid.uuid4().hex[:8]
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[Key, Json] = {}
        self.resource_version = 0
        self.history: list[tuple[int, str, Key, Json]] = []  # (resourceVersion, event type, key, object) for watches
        self.applied: dict[tuple[Key, str], Json] = {}  # what each field manager applied last, per object
        self.pods: dict[tuple[str, str], Pod] = {}
        self.rollouts: dict[tuple[str, str], Rollout] = {}
        self.proxies: dict[tuple[str, str], ThreadingHTTPServer] = {}
        self.calls: list[str] = []  # "VERB path" of every API call, for tests
        self.errors: list[str] = []  # the controller's own failures (none expected)
        self.containers: set[str] = set()  # every container name started (close() removes what is left by label)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        with self.lock:
            for name in ("default", "kube-system", "kube-public"):
                self._store(NAMESPACE, "", self._admit(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, None))

    # -- life -------------------------------------------------------------------------------------------

    def __enter__(self) -> KubeStandin:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _api_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        for target, name in ((self._server.serve_forever, "k8s-standin-api"), (self._control, "k8s-standin-controller")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()
        with self.changed:
            self.changed.notify_all()
            pods = list(self.pods.values())
            self.pods.clear()
            proxies = list(self.proxies.values())
            self.proxies.clear()
        for pod in pods:
            pod.stop.set()
        for server in [*proxies, *([self._server] if self._server else [])]:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        # One by one, of those that exist: podman 4.3's ``rm -f`` of several names, one of them gone, removes none.
        listed = self._podman("ps", "-a", "-q", "--filter", f"label={CONTAINER_LABEL}={self.instance}", timeout=60)
        for container in listed.stdout.split():
            self._podman("rm", "-f", "-t", "1", container, timeout=60)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose context ``standin`` (current) points at this API with its bearer token."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {"token": self.token}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin", "namespace": namespace}}],
            "current-context": "standin",
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- the store ------------------------------------------------------------------------------------

    @staticmethod
    def _key(kind: Kind, namespace: str, name: str) -> Key:
        return (kind.group, kind.plural, namespace if kind.namespaced else "", name)

    def get(self, kind: Kind, namespace: str, name: str) -> Json | None:
        """The stored object (not a copy: hold :attr:`lock` and do not change it)."""
        return self.objects.get(self._key(kind, namespace, name))

    def items(self, kind: Kind, namespace: str | None = None) -> list[Json]:
        found = [
            obj for (group, plural, ns, _), obj in self.objects.items() if (group, plural) == (kind.group, kind.plural) and (namespace is None or ns == namespace)
        ]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def _store(self, kind: Kind, namespace: str, obj: Json, event: str | None = None) -> Json:
        key = self._key(kind, namespace, obj["metadata"]["name"])
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        event = event or ("MODIFIED" if key in self.objects else "ADDED")
        self.objects[key] = obj
        self.history.append((self.resource_version, event, key, copy.deepcopy(obj)))
        del self.history[:-2000]
        self.changed.notify_all()
        return obj

    def _remove(self, kind: Kind, namespace: str, name: str) -> Json | None:
        key = self._key(kind, namespace, name)
        obj = self.objects.pop(key, None)
        if obj is not None:
            self.resource_version += 1
            self.history.append((self.resource_version, "DELETED", key, copy.deepcopy(obj)))
            for applied in [k for k in self.applied if k[0] == key]:
                del self.applied[applied]
            self.changed.notify_all()
        return obj

    # -- admission: defaults and validation ------------------------------------------------------------

    def _admit(self, kind: Kind, obj: Json, old: Json | None) -> Json:
        """``obj`` defaulted and checked (422 if invalid), with the server's metadata (kept from ``old``)."""
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise ApiError(400, "metadata must be an object")
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        name = str(metadata.get("name") or "")
        causes: list[tuple[str, str]] = []
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif len(name) > 253 or not NAME.fullmatch(name) or (kind in (NAMESPACE, SERVICE) and ("." in name or len(name) > 63)):
            causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, "-" or "."'))
        for where in ("labels", "annotations"):
            values = metadata.get(where)
            if values is None:
                metadata.pop(where, None)
                continue
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                causes.append((f"metadata.{where}", "Invalid value: the values must be strings"))
            elif where == "labels":
                for key, value in values.items():
                    if not LABEL_NAME.fullmatch(key) or not LABEL_VALUE.fullmatch(value) or len(value) > 63:
                        causes.append(("metadata.labels", f'Invalid value: "{key}={value}": not a valid label'))
        causes += self._check(kind, obj)
        if causes:
            raise invalid(kind, name, causes)
        if old is not None:
            for key in ("uid", "creationTimestamp", "generation", "ownerReferences"):
                if key in old["metadata"]:
                    metadata.setdefault(key, old["metadata"][key])
            metadata["uid"], metadata["creationTimestamp"] = old["metadata"]["uid"], old["metadata"]["creationTimestamp"]
            metadata["generation"] = old["metadata"].get("generation", 1) + (1 if obj.get("spec") != old.get("spec") else 0)
        else:
            metadata["uid"], metadata["creationTimestamp"], metadata["generation"] = str(uuid.uuid4()), now(), 1
        metadata.pop("resourceVersion", None)
        return obj

    def _check(self, kind: Kind, obj: Json) -> list[tuple[str, str]]:
        """Defaults ``obj`` of ``kind`` in place and returns what is wrong with it."""
        spec = obj.get("spec")
        if kind is NAMESPACE:
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
            return []
        if kind is SECRET:
            data = dict(obj.get("data") or {})
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            for key, value in data.items():
                try:
                    base64.b64decode(value, validate=True)
                except (ValueError, TypeError):
                    return [(f"data[{key}]", "Invalid value: not base64")]
            obj["data"] = data
            obj.setdefault("type", "Opaque")
            return []
        if kind in (SERVICE, DEPLOYMENT) and not isinstance(spec, dict):
            return [("spec", "Required value")]
        if kind is SERVICE:
            assert isinstance(spec, dict)
            spec.setdefault("type", "ClusterIP")
            if spec["type"] != "ExternalName" and not spec.get("ports"):
                return [("spec.ports", "Required value")]
            for port in spec.get("ports") or []:
                if not isinstance(port.get("port"), int):
                    return [("spec.ports.port", "Required value")]
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port["port"])
            spec.setdefault("sessionAffinity", "None")
            digest = hashlib.sha256(obj["metadata"].get("name", "").encode()).digest()
            spec.setdefault("clusterIP", f"10.96.{digest[0]}.{digest[1] or 1}")
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            return []
        if kind is DEPLOYMENT:
            assert isinstance(spec, dict)
            return self._check_deployment(spec)
        if kind.kind == "HorizontalPodAutoscaler":
            if not isinstance(spec, dict) or not spec.get("scaleTargetRef") or not isinstance(spec.get("maxReplicas"), int):
                return [("spec", "Required value: scaleTargetRef and maxReplicas")]
            spec.setdefault("minReplicas", 1)
            if spec["minReplicas"] > spec["maxReplicas"]:
                return [("spec.maxReplicas", f"Invalid value: {spec['maxReplicas']}: must be greater than or equal to minReplicas")]
            obj["status"] = obj.get("status") or {"currentReplicas": 0, "desiredReplicas": 0}
        if kind.kind == "PodDisruptionBudget":
            if isinstance(spec, dict) and "minAvailable" in spec and "maxUnavailable" in spec:
                return [("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")]
            obj["status"] = obj.get("status") or {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
        return []

    def _check_deployment(self, spec: Json) -> list[tuple[str, str]]:
        selector = spec.get("selector")
        template = spec.get("template")
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            return [("spec.selector", "Required value")]
        if not isinstance(template, dict):
            return [("spec.template", "Required value")]
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector_matches(selector, labels):
            return [("spec.template.metadata.labels", f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`")]
        pod = template.setdefault("spec", {})
        containers = pod.get("containers")
        if not isinstance(containers, list) or not containers:
            return [("spec.template.spec.containers", "Required value")]
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not container.get("name") or not container.get("image"):
                return [(f"spec.template.spec.containers[{index}]", "Required value: name and image")]
            tag = container["image"].rsplit("/", 1)[-1]
            container.setdefault("imagePullPolicy", "Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("terminationGracePeriodSeconds", 30)
        pod.setdefault("schedulerName", "default-scheduler")
        pod.setdefault("securityContext", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {}).setdefault("maxSurge", "25%")
            strategy["rollingUpdate"].setdefault("maxUnavailable", "25%")
        if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
            return [("spec.replicas", "Invalid value: must be a non-negative integer")]
        return []

    # -- the verbs --------------------------------------------------------------------------------------

    def _namespace_exists(self, kind: Kind, namespace: str) -> None:
        if kind.namespaced and self.get(NAMESPACE, "", namespace) is None:
            raise not_found(NAMESPACE, namespace)

    def _body_kind(self, kind: Kind, body: Any, namespace: str) -> Json:
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        if body.get("kind") not in (None, kind.kind) or body.get("apiVersion") not in (None, kind.api_version):
            raise ApiError(400, f"the body is a {body.get('apiVersion')} {body.get('kind')}, not a {kind.api_version} {kind.kind}")
        metadata = body.get("metadata") or {}
        if kind.namespaced and metadata.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
        obj: Json = copy.deepcopy(body)
        if kind.namespaced:
            obj.setdefault("metadata", {})["namespace"] = namespace
        return obj

    def create(self, kind: Kind, namespace: str, body: Any, *, dry_run: bool = False, internal: bool = False) -> Json:
        if kind.read_only and not internal:
            raise ApiError(405, f"{kind.resource} are written by the controller only", reason="MethodNotAllowed")
        obj = self._body_kind(kind, body, namespace)
        metadata = obj.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{''.join(token_source.choice(SAFE_ALPHABET) for _ in range(5))}"
        self._namespace_exists(kind, namespace)
        name = str(metadata.get("name") or "")
        if name and self.get(kind, namespace, name) is not None:
            raise ApiError(409, f'{kind.resource} "{name}" already exists', reason="AlreadyExists", details={"name": name, "group": kind.group, "kind": kind.plural})
        if kind.status and kind is not NAMESPACE:
            obj["status"] = {}
        obj = self._admit(kind, obj, None)
        if dry_run:
            return obj
        return self._store(kind, namespace, obj)

    def update(self, kind: Kind, namespace: str, name: str, body: Any, *, subresource: str | None = None, dry_run: bool = False, internal: bool = False) -> Json:
        if kind.read_only and not internal:
            raise ApiError(405, f"{kind.resource} are written by the controller only", reason="MethodNotAllowed")
        current = self.get(kind, namespace, name)
        if current is None:
            raise not_found(kind, name)
        obj = self._body_kind(kind, body, namespace)
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name", name) != name:
            raise ApiError(400, f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})")
        metadata["name"] = name
        sent = metadata.get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been modified; please apply your changes to the latest version and try again',
                details={"name": name, "group": kind.group, "kind": kind.plural},
            )
        if subresource == "status":
            status = obj.get("status")
            obj = copy.deepcopy(current)
            obj["status"] = status if status is not None else {}
        elif kind.status and kind is not NAMESPACE:
            obj["status"] = copy.deepcopy(current.get("status") or {})
        obj = self._admit(kind, obj, current)
        if dry_run:
            return obj
        return self._store(kind, namespace, obj)

    def patch(self, kind: Kind, namespace: str, name: str, content_type: str, body: bytes, query: dict[str, str], *, subresource: str | None = None) -> Json:
        dry_run = query.get("dryRun") == "All"
        try:
            patch = yaml.safe_load(body or b"{}") if "apply-patch" in content_type else json.loads(body or b"{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"the patch does not parse: {exc}") from exc
        current = self.get(kind, namespace, name)
        if "apply-patch" in content_type:
            return self._server_side_apply(kind, namespace, name, patch, current, query, subresource=subresource, dry_run=dry_run)
        if current is None:
            raise not_found(kind, name)
        if "json-patch" in content_type:
            patched = json_patch(current, patch)
        elif "strategic-merge-patch" in content_type:
            patched = strategic_merge_patch(current, patch)
        elif "merge-patch" in content_type:
            patched = merge_patch(current, patch)
        else:
            raise ApiError(415, f"the patch type {content_type!r} is not one of application/apply-patch+yaml, application/merge-patch+json, "
                           "application/strategic-merge-patch+json, application/json-patch+json")
        if not isinstance(patched, dict):
            raise ApiError(422, "the patched object is not an object")
        patched.setdefault("metadata", {})["name"] = name
        if patched["metadata"].get("resourceVersion") == current["metadata"]["resourceVersion"] or not isinstance(patch, dict):
            patched["metadata"].pop("resourceVersion", None)
        return self.update(kind, namespace, name, patched, subresource=subresource, dry_run=dry_run)

    def _server_side_apply(
        self, kind: Kind, namespace: str, name: str, applied: Any, current: Json | None, query: dict[str, str], *, subresource: str | None, dry_run: bool
    ) -> Json:
        manager = query.get("fieldManager")
        if not manager:
            raise ApiError(400, "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        if not isinstance(applied, dict):
            raise ApiError(400, "an applied configuration is an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise ApiError(400, "an applied configuration needs apiVersion and kind")
        if (applied.get("metadata") or {}).get("name", name) != name:
            raise ApiError(400, f"the name of the object ({applied['metadata'].get('name')}) does not match the name on the URL ({name})")
        applied = copy.deepcopy(applied)
        applied.setdefault("metadata", {})["name"] = name
        key = (self._key(kind, namespace, name), manager)
        wanted = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        if subresource == "status":
            wanted = {"status": applied.get("status") or {}}
        wanted["metadata"] = {k: v for k, v in applied["metadata"].items() if k in ("labels", "annotations")}
        if current is None:
            if subresource is not None:
                raise not_found(kind, name)
            obj = self.create(kind, namespace, applied, dry_run=dry_run)
        else:
            base = copy.deepcopy(current)
            merged = apply_fields(base, wanted, self.applied.get(key, {}))
            merged["metadata"] = {**base["metadata"], **merged["metadata"]}
            obj = self.update(kind, namespace, name, merged, subresource=subresource, dry_run=dry_run)
        if not dry_run:
            self.applied[key] = wanted
            entries = [m for m in obj["metadata"].get("managedFields", []) if m.get("manager") != manager]
            entries.append({"manager": manager, "operation": "Apply", "apiVersion": kind.api_version, "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {}})
            obj["metadata"]["managedFields"] = entries
        return obj

    def delete(self, kind: Kind, namespace: str, name: str) -> Json:
        if kind.read_only and kind is not POD:
            raise ApiError(405, f"{kind.resource} are deleted with their owner", reason="MethodNotAllowed")
        obj = self.get(kind, namespace, name)
        if obj is None:
            raise not_found(kind, name)
        if kind is POD:  # the ReplicaSet starts another, as Kubernetes' would
            pod = self.pods.get((namespace, name))
            if pod is not None:
                self._stop_pod(pod)
            return self._deleted(kind, obj)
        self._remove(kind, namespace, name)
        if kind is NAMESPACE:
            for group, plural, _, item in [k for k in self.objects if k[2] == name]:
                self._remove(BY_GROUP_PLURAL[(group, plural)], name, item)
            for pod in [p for p in self.pods.values() if p.namespace == name]:
                self._stop_pod(pod)
            for key in [k for k in self.rollouts if k[0] == name]:
                del self.rollouts[key]
        elif kind is DEPLOYMENT:
            uid = obj["metadata"]["uid"]
            for replicaset in self.items(REPLICASET, namespace):
                if any(ref.get("uid") == uid for ref in replicaset["metadata"].get("ownerReferences", [])):
                    self._remove(REPLICASET, namespace, replicaset["metadata"]["name"])
                    for pod in [p for p in self.pods.values() if p.namespace == namespace and p.replicaset == replicaset["metadata"]["name"]]:
                        self._stop_pod(pod)
            self.rollouts.pop((namespace, name), None)
        return self._deleted(kind, obj)

    @staticmethod
    def _deleted(kind: Kind, obj: Json) -> Json:
        details = {"name": obj["metadata"]["name"], "group": kind.group, "kind": kind.plural, "uid": obj["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def listing(self, kind: Kind, namespace: str | None, query: dict[str, str]) -> Json:
        matches = self._list_filter(query)
        items = [obj for obj in self.items(kind, namespace) if matches(obj)]
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": {"resourceVersion": str(self.resource_version)}, "items": items}

    @staticmethod
    def _list_filter(query: dict[str, str]) -> Any:
        labels = label_matcher(query.get("labelSelector"))
        fields: list[tuple[str, str, bool]] = []
        for term in filter(None, (query.get("fieldSelector") or "").split(",")):
            negate = "!=" in term
            where, value = re.split(r"!=|==|=", term, maxsplit=1)
            fields.append((where.strip(), value.strip(), negate))

        def matches(obj: Json) -> bool:
            if not labels(obj["metadata"].get("labels") or {}):
                return False
            for where, value, negate in fields:
                found: Any = obj
                for part in where.split("."):
                    found = found.get(part) if isinstance(found, dict) else None
                if (str(found or "") == value) == negate:
                    return False
            return True

        return matches

    # -- HTTP ---------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Json]:
        if headers.get("Authorization", "") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized")
        with self.lock:
            self.calls.append(f"{method} {path}")
        parts = [p for p in path.split("/") if p]
        if method == "GET" and path in ("/version", "/version/"):
            return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-macaron-standin", "platform": "linux/amd64", "goVersion": "go1.23", "compiler": "gc"}
        if method == "GET" and parts[:1] in (["api"], ["apis"]) and (len(parts) == 1 or self._is_group_path(parts)):
            return 200, self._discovery(parts)
        kind, namespace, name, subresource = self._route(parts)
        with self.lock:
            if method == "GET" and name is None:
                return 200, self.listing(kind, namespace, query)
            if method == "POST" and name is None and (namespace is not None or not kind.namespaced):
                return 201, self.create(kind, namespace or "", _parse(body), dry_run=query.get("dryRun") == "All")
            if name is None:
                raise ApiError(405, f"{method} on a collection of {kind.resource} is not supported here", reason="MethodNotAllowed")
            ns = namespace or ""
            if method == "GET":
                obj = self.get(kind, ns, name)
                if obj is None:
                    raise not_found(kind, name)
                return 200, obj
            if method == "PUT":
                return 200, self.update(kind, ns, name, _parse(body), subresource=subresource, dry_run=query.get("dryRun") == "All")
            if method == "PATCH":
                existed = self.get(kind, ns, name) is not None
                patched = self.patch(kind, ns, name, headers.get("Content-Type", ""), body, query, subresource=subresource)
                return (200 if existed else 201), patched
            if method == "DELETE":
                return 200, self.delete(kind, ns, name)
        raise ApiError(405, f"{method} is not supported", reason="MethodNotAllowed")

    @staticmethod
    def _is_group_path(parts: list[str]) -> bool:
        if parts[0] == "api":
            return parts[1:] == ["v1"]
        groups = {k.group: k.version for k in KINDS if k.group}
        return len(parts) <= 3 and parts[1] in groups and (len(parts) == 2 or parts[2] == groups[parts[1]])

    def _discovery(self, parts: list[str]) -> Json:
        server = [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.removeprefix("http://")}]
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": server}
        groups: dict[str, str] = {}
        for kind in KINDS:
            if kind.group:
                groups.setdefault(kind.group, kind.version)

        def group(name: str) -> Json:
            version = {"groupVersion": f"{name}/{groups[name]}", "version": groups[name]}
            return {"name": name, "versions": [version], "preferredVersion": version}

        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group(name) for name in groups]}
        if parts[0] == "apis" and len(parts) == 2:
            return {"kind": "APIGroup", "apiVersion": "v1", **group(parts[1])}
        group_name, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
        resources = [entry for kind in KINDS if (kind.group, kind.version) == (group_name, version) for entry in kind.discovery()]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group_name}/{version}" if group_name else version, "resources": resources}

    @staticmethod
    def _route(parts: list[str]) -> tuple[Kind, str | None, str | None, str | None]:
        """(kind, namespace, name, subresource) of a resource path; 404 for any other."""
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, f"the server could not find the requested resource (/{'/'.join(parts)})")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in BY_PLURAL:
            namespace, rest = rest[1], rest[2:]
        kind = BY_PLURAL.get((group, version, rest[0]))
        if kind is None or len(rest) > 3 or (len(rest) == 3 and not (kind.status and rest[2] == "status")):
            raise ApiError(404, f"the server could not find the requested resource (/{'/'.join(parts)})")
        if kind.namespaced and namespace is None and len(rest) > 1:
            raise ApiError(404, f"the server could not find the requested resource (/{'/'.join(parts)})")
        return kind, namespace, (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)

    def watch(self, path: str, query: dict[str, str], headers: Any) -> Iterator[Json]:
        """The events of a ``?watch=true`` list: the current objects as ADDED (unless a resourceVersion is given), then changes.

        Checked (401, 404) before it returns, so the errors come before the stream starts."""
        if headers.get("Authorization", "") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized")
        kind, namespace, name, _ = self._route([p for p in path.split("/") if p])
        if name is not None:
            raise ApiError(405, "watch a collection (with fieldSelector=metadata.name=NAME)", reason="MethodNotAllowed")
        matches = self._list_filter(query)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        with self.lock:
            self.calls.append(f"WATCH {path}")
            since = int(query.get("resourceVersion") or 0)
            if since:
                pending = [h for h in self.history if h[0] > since]
            else:
                pending = [(0, "ADDED", self._key(kind, o["metadata"].get("namespace", ""), o["metadata"]["name"]), copy.deepcopy(o)) for o in self.items(kind, namespace)]
            since = self.resource_version
        return self._events(kind, namespace, matches, pending, since, deadline)

    def _events(self, kind: Kind, namespace: str | None, matches: Any, pending: list[tuple[int, str, Key, Json]], since: int, deadline: float) -> Iterator[Json]:
        while True:
            for _, event, key, obj in pending:
                if key[:2] == (kind.group, kind.plural) and (namespace is None or key[2] == namespace) and matches(obj):
                    yield {"type": event, "object": obj}
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                return
            with self.changed:
                self.changed.wait(min(remaining, 1.0))
                pending = [h for h in self.history if h[0] > since]
                since = self.resource_version

    # -- the controller -----------------------------------------------------------------------------

    def _control(self) -> None:
        while not self._stopping.is_set():
            with self.changed:
                self.changed.wait(0.25)
                if self._stopping.is_set():
                    return
                try:
                    self._reconcile()
                except Exception as exc:  # a controller bug must not stop the controller: kept for the tests to show
                    self.errors.append(repr(exc))

    def _reconcile(self) -> None:
        for deployment in self.items(DEPLOYMENT):
            self._reconcile_deployment(deployment)
        live_replicasets = {(rs["metadata"]["namespace"], rs["metadata"]["name"]) for rs in self.items(REPLICASET)}
        for pod in list(self.pods.values()):
            if (pod.namespace, pod.replicaset) not in live_replicasets:
                self._stop_pod(pod)
        self._sync_pods()
        for service in self.items(SERVICE):
            self._reconcile_service(service)
        for (namespace, name), server in list(self.proxies.items()):
            if self.get(SERVICE, namespace, name) is None:
                del self.proxies[(namespace, name)]
                threading.Thread(target=_close_server, args=(server,), daemon=True).start()
        for ingress in self.items(INGRESS):
            self._reconcile_ingress(ingress)
        for autoscaler in self.items(AUTOSCALER):
            self._reconcile_autoscaler(autoscaler)
        for budget in self.items(BUDGET):
            self._reconcile_budget(budget)
        for certificate in self.items(CERTIFICATE):
            domains = (certificate.get("spec") or {}).get("domains") or []
            status = {"certificateName": f"mcrt-{certificate['metadata']['uid'][:8]}", "certificateStatus": "Active", "domainStatus": [{"domain": d, "status": "Active"} for d in domains]}
            if certificate.get("status") != status:
                self._set_status(CERTIFICATE, certificate, status)

    def _set_status(self, kind: Kind, obj: Json, status: Json) -> None:
        updated = copy.deepcopy(obj)
        updated["status"] = status
        self._store(kind, obj["metadata"].get("namespace", ""), updated)

    def _deadline(self, spec: Json) -> float:
        seconds = float(spec.get("progressDeadlineSeconds") or 600)
        return min(seconds, self.progress_deadline_cap) if self.progress_deadline_cap is not None else seconds

    def _reconcile_deployment(self, deployment: Json) -> None:
        metadata, spec = deployment["metadata"], deployment["spec"]
        namespace, name = metadata["namespace"], metadata["name"]
        template = copy.deepcopy(spec["template"])
        digest = template_hash(template)
        owned = [rs for rs in self.items(REPLICASET, namespace) if any(ref.get("uid") == metadata["uid"] for ref in rs["metadata"].get("ownerReferences", []))]
        latest = max((int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in owned), default=0)
        current = next((rs for rs in owned if rs["metadata"].get("labels", {}).get(HASH_LABEL) == digest), None)
        replicas = int(spec.get("replicas", 1))
        if current is None:
            template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
            body = {
                "metadata": {
                    "name": f"{name}-{digest}",
                    "namespace": namespace,
                    "labels": {**(template["metadata"].get("labels") or {})},
                    "annotations": {REVISION: str(latest + 1), "deployment.kubernetes.io/desired-replicas": str(replicas), "deployment.kubernetes.io/max-replicas": str(replicas + 1)},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}],
                },
                "spec": {"replicas": 0, "selector": selector, "template": template, "minReadySeconds": spec.get("minReadySeconds", 0)},
            }
            current = self.create(REPLICASET, namespace, body, internal=True)
            self._event(DEPLOYMENT, deployment, "ScalingReplicaSet", f"Scaled up replica set {current['metadata']['name']} to {replicas}")
        elif int(current["metadata"].get("annotations", {}).get(REVISION, "0")) < latest:  # an older template again: it is the newest revision now
            updated = copy.deepcopy(current)
            annotations = updated["metadata"].setdefault("annotations", {})
            history = [v for v in annotations.get("deployment.kubernetes.io/revision-history", "").split(",") if v]
            annotations["deployment.kubernetes.io/revision-history"] = ",".join([*history, annotations.get(REVISION, "0")])
            annotations[REVISION] = str(latest + 1)
            current = self.update(REPLICASET, namespace, updated["metadata"]["name"], updated, internal=True)
            self._event(DEPLOYMENT, deployment, "ScalingReplicaSet", f"Scaled up replica set {current['metadata']['name']} to {replicas}")
        revision = current["metadata"]["annotations"][REVISION]
        if (metadata.get("annotations") or {}).get(REVISION) != revision:
            updated = copy.deepcopy(deployment)
            updated["metadata"].setdefault("annotations", {})[REVISION] = revision
            updated["metadata"]["generation"] = metadata.get("generation", 1)
            deployment = self._store(DEPLOYMENT, namespace, updated)
            metadata, spec = deployment["metadata"], deployment["spec"]

        key = (namespace, name)
        rollout = self.rollouts.get(key)
        if rollout is None or rollout.template_hash != digest:
            rollout = Rollout(digest, time.monotonic(), time.monotonic() + self._deadline(spec))
            self.rollouts[key] = rollout
        pods = [p for p in self.pods.values() if p.namespace == namespace and any(p.replicaset == rs["metadata"]["name"] for rs in [*owned, current])]
        new_pod = next((p for p in pods if p.template_hash == digest and p.state not in ("Terminating", "Stopped")), None)
        old_ready = any(p.ready for p in pods if p.template_hash != digest)
        if replicas == 0:
            for pod in pods:
                self._stop_pod(pod)
            new_pod, old_ready = None, False
        elif new_pod is None and not rollout.failed and not any(p.ready and p.template_hash == digest for p in pods):
            new_pod = self._start_pod(current, spec["template"])
        elif new_pod is not None and rollout.completed and new_pod.state == "Failed" and time.monotonic() - new_pod.changed > min(2.0**new_pod.restarts, 30.0):
            self._stop_pod(new_pod)  # restartPolicy Always, with the kubelet's back-off
            restarts = new_pod.restarts
            new_pod = self._start_pod(current, spec["template"])
            new_pod.restarts = restarts
        if new_pod is not None and new_pod.ready:
            rollout.completed = True
            for pod in pods:
                if pod is not new_pod and pod.state not in ("Terminating", "Stopped"):
                    self._stop_pod(pod)
                    self._event(DEPLOYMENT, deployment, "ScalingReplicaSet", f"Scaled down replica set {pod.replicaset} to 0")
            old_ready = False
        elif new_pod is not None and not rollout.failed and not rollout.completed and time.monotonic() > rollout.deadline:
            rollout.failed = True
            self._stop_pod(new_pod)
            self._event(DEPLOYMENT, deployment, "ProgressDeadlineExceeded", f'ReplicaSet "{current["metadata"]["name"]}" has timed out progressing.', "Warning")
        done = replicas == 0 or (new_pod is not None and new_pod.ready)
        updated_count = replicas if done or rollout.completed else min(1, replicas)
        ready = replicas if done or old_ready else 0
        status: Json = {
            "observedGeneration": metadata.get("generation", 1),
            "replicas": ready + (0 if done else updated_count),
            "updatedReplicas": updated_count,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if ready < replicas:
            status["unavailableReplicas"] = replicas - ready
        if done or rollout.completed:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{current["metadata"]["name"]}" has successfully progressed.')
        elif rollout.failed:
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{current["metadata"]["name"]}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{current["metadata"]["name"]}" is progressing.')
        available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.") if ready >= replicas else (
            "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        old_conditions = {c["type"]: c for c in (deployment.get("status") or {}).get("conditions") or []}
        status["conditions"] = [_condition(old_conditions.get(kind), kind, *values) for kind, values in (("Available", available), ("Progressing", progressing))]
        if _without_times(deployment.get("status") or {}) != _without_times(status):
            self._set_status(DEPLOYMENT, deployment, status)
        for rs_name in {rs["metadata"]["name"] for rs in [*owned, current]}:
            replicaset = self.get(REPLICASET, namespace, rs_name) or {}
            if not replicaset:
                continue
            mine = rs_name == current["metadata"]["name"]
            serving = any(p.ready and p.replicaset == replicaset["metadata"]["name"] for p in pods if p.state == "Ready")
            wanted = replicas if mine else (replicas if serving else 0)
            count = replicas if serving else (1 if mine and new_pod is not None and not done else 0)
            rs_status = {"replicas": count, "readyReplicas": replicas if serving else 0, "availableReplicas": replicas if serving else 0,
                         "fullyLabeledReplicas": count, "observedGeneration": replicaset["metadata"].get("generation", 1)}
            if replicaset["spec"].get("replicas") != wanted:
                changed = copy.deepcopy(replicaset)
                changed["spec"]["replicas"] = wanted
                replicaset = self.update(REPLICASET, namespace, replicaset["metadata"]["name"], changed, internal=True)
            if replicaset.get("status") != rs_status:
                self._set_status(REPLICASET, replicaset, rs_status)

    def _reconcile_service(self, service: Json) -> None:
        namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
        server = self.proxies.get((namespace, name))
        if server is None:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(_ServiceRouter(self, namespace, name), label="Kubernetes stand-in", unrouted=503))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"service-{namespace}-{name}", daemon=True).start()
            self.proxies[(namespace, name)] = server
        status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": server.server_address[1], "protocol": "TCP"}]}]}}
        if service.get("status") != status:
            self._set_status(SERVICE, service, status)

    def _reconcile_ingress(self, ingress: Json) -> None:
        spec = ingress.get("spec") or {}
        backends = [spec.get("defaultBackend")] + [p.get("backend") for rule in spec.get("rules") or [] for p in (rule.get("http") or {}).get("paths") or []]
        names = [b["service"]["name"] for b in backends if b and (b.get("service") or {}).get("name")]
        server = self.proxies.get((ingress["metadata"]["namespace"], names[0])) if names else None
        if server is None:
            return
        status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": server.server_address[1], "protocol": "TCP"}]}]}}
        if ingress.get("status") != status:
            self._set_status(INGRESS, ingress, status)

    def _reconcile_autoscaler(self, autoscaler: Json) -> None:
        """No scaling (nothing measures load here): the status reports the target's replicas, within the bounds."""
        spec = autoscaler["spec"]
        target = spec["scaleTargetRef"]
        found = self.get(DEPLOYMENT, autoscaler["metadata"]["namespace"], target.get("name", "")) if target.get("kind") == "Deployment" else None
        current = int(((found or {}).get("status") or {}).get("replicas") or 0)
        wanted = int(((found or {}).get("spec") or {}).get("replicas") or 0)
        status = {"currentReplicas": current, "desiredReplicas": max(spec["minReplicas"], min(spec["maxReplicas"], wanted)) if found else 0}
        if autoscaler.get("status") != status:
            self._set_status(AUTOSCALER, autoscaler, status)

    def _reconcile_budget(self, budget: Json) -> None:
        spec = budget.get("spec") or {}
        expected = healthy = 0
        for found in self.items(DEPLOYMENT, budget["metadata"]["namespace"]):
            if selector_matches(spec.get("selector"), found["spec"]["template"].get("metadata", {}).get("labels") or {}):
                expected += int(found["spec"].get("replicas", 1))
                healthy += int((found.get("status") or {}).get("availableReplicas") or 0)

        def count(value: Any) -> int:
            return -(-expected * int(value[:-1]) // 100) if isinstance(value, str) and value.endswith("%") else int(value)

        desired = count(spec["minAvailable"]) if "minAvailable" in spec else expected - count(spec.get("maxUnavailable", 0))
        status = {"currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": max(0, healthy - desired), "expectedPods": expected,
                  "observedGeneration": budget["metadata"].get("generation", 1)}
        if budget.get("status") != status:
            self._set_status(BUDGET, budget, status)

    def backend(self, namespace: str, service: str) -> int | None:
        """The port of the newest ready container the Service's selector matches (None: no endpoint)."""
        with self.lock:
            found = self.get(SERVICE, namespace, service)
            selector = ((found or {}).get("spec") or {}).get("selector")
            if not selector:
                return None
            ready = [p for p in self.pods.values() if p.namespace == namespace and p.ready and all(p.labels.get(k) == v for k, v in selector.items())]
            return max(ready, key=lambda p: p.started).port if ready else None

    def _event(self, kind: Kind, obj: Json, reason: str, message: str, type_: str = "Normal", namespace: str | None = None) -> None:
        namespace = namespace or obj["metadata"].get("namespace", "default")
        if self.get(NAMESPACE, "", namespace) is None:
            return
        stamp = now()
        event = {
            "metadata": {"name": f"{obj['metadata']['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {"apiVersion": kind.api_version, "kind": kind.kind, "name": obj["metadata"]["name"], "namespace": namespace, "uid": obj["metadata"].get("uid", "")},
            "reason": reason, "message": message, "type": type_, "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "deployment-controller"}, "reportingComponent": "deployment-controller",
        }
        self.create(EVENT, namespace, event, internal=True)

    # -- pods ------------------------------------------------------------------------------------------

    def _start_pod(self, replicaset: Json, template: Json) -> Pod:
        namespace = replicaset["metadata"]["namespace"]
        name = f"{replicaset['metadata']['name']}-{''.join(token_source.choice(SAFE_ALPHABET) for _ in range(5))}"
        container = copy.deepcopy(template["spec"]["containers"][0])
        probes = [probe["httpGet"].get("path", "/") for probe in (container.get("startupProbe"), container.get("readinessProbe")) if probe and probe.get("httpGet")]
        labels = {**(template.get("metadata", {}).get("labels") or {}), HASH_LABEL: replicaset["metadata"]["labels"][HASH_LABEL]}
        grace = min(int(template["spec"].get("terminationGracePeriodSeconds", 30)), 10)
        pod = Pod(name, namespace, replicaset["metadata"]["name"], labels[HASH_LABEL], labels, container, probes, grace, copy.deepcopy(template["spec"]))
        self.pods[(namespace, name)] = pod
        thread = threading.Thread(target=self._run_pod, args=(pod,), name=f"pod-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return pod

    def _environment(self, pod: Pod) -> dict[str, str]:
        """The container's variables, secrets resolved (KeyError naming what is missing, as CreateContainerConfigError)."""
        environment: dict[str, str] = {}
        with self.lock:
            for source in pod.container.get("envFrom") or []:
                reference = source.get("secretRef")
                if not reference:
                    continue
                secret = self.get(SECRET, pod.namespace, reference.get("name", ""))
                if secret is None:
                    if reference.get("optional"):
                        continue
                    raise KeyError(f'secret "{reference.get("name")}" not found')
                prefix = source.get("prefix", "")
                environment.update({prefix + k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
            for variable in pod.container.get("env") or []:
                source = variable.get("valueFrom")
                if source is None:
                    environment[variable["name"]] = str(variable.get("value", ""))
                elif "secretKeyRef" in source:
                    reference = source["secretKeyRef"]
                    secret = self.get(SECRET, pod.namespace, reference.get("name", ""))
                    data = (secret or {}).get("data") or {}
                    if reference.get("key") not in data:
                        if reference.get("optional"):
                            continue
                        what = f'secret "{reference.get("name")}" not found' if secret is None else f'couldn\'t find key {reference.get("key")} in Secret {pod.namespace}/{reference.get("name")}'
                        raise KeyError(what)
                    environment[variable["name"]] = base64.b64decode(data[reference["key"]]).decode()
                elif "fieldRef" in source:
                    where = source["fieldRef"].get("fieldPath")
                    environment[variable["name"]] = {"metadata.name": pod.name, "metadata.namespace": pod.namespace, "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}.get(where, "")
        return environment

    def _run_pod(self, pod: Pod) -> None:
        """Start the container, then follow it: Ready once its probes answer, Failed if it exits."""
        while True:  # as the kubelet: a Secret that is not there yet may come
            try:
                environment = self._environment(pod)
                break
            except KeyError as exc:
                self._pod_state(pod, "Pending", "CreateContainerConfigError", str(exc).strip("'\""))
                if pod.stop.wait(1.0):
                    return
        image = pod.container["image"]
        if pod.container.get("imagePullPolicy") == "Always" or self._podman("image", "exists", image).returncode != 0:
            pulled = self._podman("pull", "-q", *(["--tls-verify=false"] if _local_registry(image) else []), image, timeout=600)
            if pulled.returncode != 0 and self._podman("image", "exists", image).returncode != 0:
                self._pod_state(pod, "Failed", "ErrImagePull", _last_line(pulled.stderr))
                return
        if pod.stop.is_set():
            return
        pod.port = free_port()
        environment["PORT"] = str(pod.port)
        arguments = [str(a) for a in pod.container.get("args") or []]
        command = [str(c) for c in pod.container.get("command") or []]
        if not arguments and not command:  # the image's own arguments
            found = self._podman("image", "inspect", "--format", "{{json .Config.Cmd}}", image)
            default = json.loads(found.stdout or "null") if found.returncode == 0 else None
            if isinstance(default, list) and "0.0.0.0" in default:
                arguments = [str(a) for a in default]
        arguments = ["127.0.0.1" if a == "0.0.0.0" else a for a in arguments]  # host networking: nothing beyond this machine
        pod.container_name = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"k8s-{self.instance}-{pod.namespace}-{pod.name}")[:120]
        with self.lock:
            if self._stopping.is_set():
                return
            self.containers.add(pod.container_name)
        # The image's HEALTHCHECK is not Kubernetes' business (the probes are), and podman's timer for it needs systemd.
        args = ["run", "-d", "--name", pod.container_name, "--label", f"{CONTAINER_LABEL}={self.instance}", "--network", "host", "--no-healthcheck"]
        args += [arg for key, value in sorted(environment.items()) for arg in ("-e", f"{key}={value}")]
        args += _security_args(pod.container, pod.pod_spec)
        if command:
            args += ["--entrypoint", json.dumps(command)]
        started = self._podman(*args, image, *arguments, timeout=120)
        if started.returncode != 0:
            self._pod_state(pod, "Failed", "RunContainerError", _last_line(started.stderr))
            return
        self._pod_state(pod, "Running", "", "")
        checked = 0.0
        while not pod.stop.wait(0.25):
            if pod.state == "Running" and (all(_answers(pod.port, path) for path in pod.probes) if pod.probes else _answers(pod.port, None)):
                self._pod_state(pod, "Ready", "", "")
            if time.monotonic() - checked > (1.0 if pod.state == "Running" else 3.0):
                checked = time.monotonic()
                state = self._podman("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", pod.container_name)
                if state.returncode == 0 and state.stdout.split()[:1] == ["false"]:
                    logs = self._podman("logs", pod.container_name)
                    with contextlib.suppress(OSError):  # kept for whoever wonders why it crashed
                        (self.workdir / f"{pod.namespace}-{pod.name}.log").write_text(logs.stdout + logs.stderr, encoding="utf-8")
                    self._pod_state(pod, "Failed", "CrashLoopBackOff", f"exit code {state.stdout.split()[-1]}: {_last_line(logs.stderr or logs.stdout)}")
                    return

    def _pod_state(self, pod: Pod, state: str, reason: str, message: str) -> None:
        with self.changed:
            if pod.state in ("Terminating", "Stopped"):
                return
            pod.state, pod.reason, pod.message, pod.changed = state, reason, message, time.monotonic()
            if reason == "CrashLoopBackOff":
                pod.restarts += 1
            self.changed.notify_all()

    def _stop_pod(self, pod: Pod) -> None:
        """Stop receiving requests now; then the container gets SIGTERM and its grace period, in the background."""
        if pod.state == "Stopped":
            return
        pod.state = "Terminating"
        pod.stop.set()

        def stop() -> None:
            pause = ((pod.container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
            if pod.container_name and pod.state != "Failed" and not self._stopping.is_set():  # out of the Service already; load balancers catch up
                time.sleep(min(float(pause.get("seconds") or 0), 5.0))
            if pod.container_name:
                self._podman("stop", "-t", str(pod.grace), pod.container_name, timeout=pod.grace + 30)
                self._podman("rm", "-f", pod.container_name, timeout=60)
            with self.changed:
                pod.state = "Stopped"
                self.pods.pop((pod.namespace, pod.name), None)
                self.changed.notify_all()

        thread = threading.Thread(target=stop, name=f"stop-{pod.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sync_pods(self) -> None:
        """The Pod objects, one per container, written when what they show changes."""
        live = {(p.namespace, p.name) for p in self.pods.values()}
        for obj in self.items(POD):
            if (obj["metadata"]["namespace"], obj["metadata"]["name"]) not in live:
                self._remove(POD, obj["metadata"]["namespace"], obj["metadata"]["name"])
        for pod in list(self.pods.values()):
            replicaset = self.get(REPLICASET, pod.namespace, pod.replicaset)
            if replicaset is None or self.get(NAMESPACE, "", pod.namespace) is None:
                continue
            wanted = self._pod_object(pod, replicaset)
            current = self.get(POD, pod.namespace, pod.name)
            if current is None:
                created = self.create(POD, pod.namespace, wanted, internal=True)
                self._set_status(POD, created, wanted["status"])
            elif _without_times(current.get("status") or {}) != _without_times(wanted["status"]) or current["metadata"].get("annotations") != wanted["metadata"]["annotations"]:
                changed = copy.deepcopy(current)
                changed["metadata"]["annotations"] = wanted["metadata"]["annotations"]
                changed["status"] = wanted["status"]
                self._store(POD, pod.namespace, changed)

    @staticmethod
    def _pod_object(pod: Pod, replicaset: Json) -> Json:
        ready = "True" if pod.ready else "False"
        state: Json
        if pod.state in ("Running", "Ready", "Terminating"):
            state = {"running": {"startedAt": pod.created}}
        elif pod.state == "Failed" and pod.reason == "CrashLoopBackOff":
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": pod.message}}
        else:
            state = {"waiting": {"reason": pod.reason or "ContainerCreating", "message": pod.message}}
        phase = "Running" if pod.state in ("Running", "Ready", "Terminating") else ("Failed" if pod.reason == "CrashLoopBackOff" else "Pending")
        container = {
            "name": pod.container["name"], "image": pod.container["image"], "imageID": "", "ready": pod.ready, "started": pod.state in ("Running", "Ready"),
            "restartCount": pod.restarts, "state": state,
        }
        return {
            "metadata": {
                "name": pod.name, "namespace": pod.namespace, "labels": pod.labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": pod.replicaset, "uid": replicaset["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
                "annotations": {"macaron.k8s-standin/port": str(pod.port), "macaron.k8s-standin/container": pod.container_name},
            },
            "spec": {"containers": [pod.container], "nodeName": "standin", "restartPolicy": "Always"},
            "status": {
                "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "startTime": pod.created,
                "conditions": [{"type": "Ready", "status": ready}, {"type": "ContainersReady", "status": ready}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [container],
                **({"message": pod.message, "reason": pod.reason} if pod.message else {}),
            },
        }

    @staticmethod
    def _podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        from macaron.image import find_tool

        try:
            return subprocess.run([find_tool("podman").path, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(list(args), 124, "", f"podman {args[0]} did not finish in {timeout:g} s")


def _security_args(container: Json, pod_spec: Json) -> list[str]:
    """podman flags for the securityContext a kubelet enforces: user, read-only root with its emptyDir mounts, capabilities."""
    pod_context, context = pod_spec.get("securityContext") or {}, container.get("securityContext") or {}
    args: list[str] = []
    user, group = context.get("runAsUser", pod_context.get("runAsUser")), context.get("runAsGroup", pod_context.get("runAsGroup"))
    if user is not None:
        args += ["--user", f"{user}:{group}" if group is not None else str(user)]
    if context.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]  # as in a pod: writable only where a volume is mounted
    empty_dirs = {v["name"] for v in pod_spec.get("volumes") or [] if "emptyDir" in v}
    for mount in container.get("volumeMounts") or []:
        if mount.get("name") in empty_dirs:
            args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
    capabilities = context.get("capabilities") or {}
    args += [arg for name in capabilities.get("drop") or [] for arg in ("--cap-drop", str(name))]
    args += [arg for name in capabilities.get("add") or [] for arg in ("--cap-add", str(name))]
    if context.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    return args


def _condition(old: Json | None, kind: str, status: str, reason: str, message: str) -> Json:
    stamp = now()
    transition = old["lastTransitionTime"] if old and old.get("status") == status else stamp
    update = old["lastUpdateTime"] if old and (old.get("status"), old.get("reason"), old.get("message")) == (status, reason, message) else stamp
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastUpdateTime": update, "lastTransitionTime": transition}


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in ("lastUpdateTime", "lastTransitionTime", "startedAt", "startTime")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _local_registry(image: str) -> bool:
    host = image.split("/", 1)[0].rsplit(":", 1)[0]
    return "/" in image and host in ("localhost", "127.0.0.1", "[::1]")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from exc


def _close_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def _api_handler(standin: KubeStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, answer: Json) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            target = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(target.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self.command == "GET" and query.get("watch") in ("true", "1", "True"):
                    self._stream(standin.watch(target.path, query, self.headers))
                    return
                status, answer = standin.handle(self.command, target.path, query, self.headers, body)
            except ApiError as exc:
                status, answer = exc.code, exc.status()
            except Exception as exc:  # a stand-in bug reaches the client as the 500 a real API server would send
                status, answer = 500, ApiError(500, f"stand-in error: {exc!r}", reason="InternalError").status()
            self._answer(status, answer)

        def _stream(self, events: Iterator[Json]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in events:
                    self._chunk(event)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True

        def _chunk(self, event: Json) -> None:
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler

