"""A local Elastic Beanstalk: the EB Query API on 127.0.0.1, whose environments really run the version's image.

moto answers HTTP 500 to most of the Elastic Beanstalk calls a blue/green deploy makes, so
``macaron deploy beanstalk --rehearse`` and the test suite use this stand-in instead. It speaks
the wire protocol boto3 speaks (form-encoded ``Action=...`` POSTs, XML answers, shapes read from
botocore's own service model), keeps real state (applications, versions, environments, CNAMEs,
events, health), and for each environment:

* reads the version's source bundle from S3 (moto's server) and its ``Dockerrun.aws.json``;
* starts the image through a *launcher* (podman, as ``macaron.image.run_image`` does) on a free
  127.0.0.1 port, with the environment properties of the option settings as its environment;
* follows the container's health check path to set the health Grey, then Green or Red.

CNAMEs (``<prefix>.<region>.elasticbeanstalk.com``) do not resolve here: the stand-in also runs
an HTTP forward proxy that sends a request for a CNAME to the container of the environment
holding it, so a client configured with that proxy (``HTTP_PROXY``) sees a CNAME swap exactly
as users of the real service do.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

ACCOUNT = "123456789012"
XMLNS = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"
ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
# Environment variables whose values the hosts fetch at launch from Parameter Store (or Secrets Manager) by ARN.
SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"
PROCESS_NAMESPACE = "aws:elasticbeanstalk:environment:process:default"


class Running(Protocol):
    def stop(self) -> None: ...


# launcher(image, port, environment) -> a running container serving on 127.0.0.1:port
Launcher = Callable[[str, int, dict[str, str]], Running]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _now() -> datetime:
    return datetime.now(timezone.utc)


class EBError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --- the Query protocol, driven by botocore's model of the service -------------------------------


def parse_params(shape: Shape | None, params: dict[str, str], prefix: str = "") -> Any:
    """Unflatten ``A.member.1.B=x`` form parameters into the values of ``shape``."""
    if shape is None:
        return {}
    if isinstance(shape, StructureShape):
        out = {}
        for name, member in shape.members.items():
            key = f"{prefix}.{member.serialization.get('name', name)}" if prefix else member.serialization.get("name", name)
            value = parse_params(member, params, key)
            if value is not None:
                out[name] = value
        return out if out or not prefix else None
    if isinstance(shape, ListShape):
        items, index = [], 1
        while any(k == f"{prefix}.member.{index}" or k.startswith(f"{prefix}.member.{index}.") for k in params):
            items.append(parse_params(shape.member, params, f"{prefix}.member.{index}"))
            index += 1
        return items if items or prefix in params else None
    if isinstance(shape, MapShape):
        mapping, index = {}, 1
        while f"{prefix}.entry.{index}.key" in params:
            mapping[params[f"{prefix}.entry.{index}.key"]] = parse_params(shape.value, params, f"{prefix}.entry.{index}.value")
            index += 1
        return mapping or None
    if prefix not in params:
        return None
    raw = params[prefix]
    if shape.type_name == "boolean":
        return raw == "true"
    if shape.type_name in ("integer", "long"):
        return int(raw)
    return raw


def to_xml(shape: Shape, value: Any) -> str:
    if isinstance(shape, StructureShape):
        return "".join(
            f"<{name}>{to_xml(member, value[name])}</{name}>" for name, member in shape.members.items() if value.get(name) is not None
        )
    if isinstance(shape, ListShape):
        return "".join(f"<member>{to_xml(shape.member, item)}</member>" for item in value)
    if isinstance(shape, MapShape):
        return "".join(f"<entry><key>{escape(k)}</key><value>{to_xml(shape.value, v)}</value></entry>" for k, v in value.items())
    if shape.type_name == "timestamp":
        return str(value.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return escape(str(value))


# --- state ---------------------------------------------------------------------------------------


@dataclass
class Environment:
    name: str
    id: str
    application: str
    version: str
    stack: str
    cname: str
    settings: dict[tuple[str, str], str]
    tags: dict[str, str]
    status: str = "Launching"
    health: str = "Grey"
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    port: int = 0
    container: Running | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    def describe(self, region: str) -> dict[str, Any]:
        return {
            "EnvironmentName": self.name,
            "EnvironmentId": self.id,
            "ApplicationName": self.application,
            "VersionLabel": self.version,
            "SolutionStackName": self.stack,
            "EndpointURL": f"127.0.0.1:{self.port}" if self.port else None,
            "CNAME": self.cname or None,
            "DateCreated": self.created,
            "DateUpdated": self.updated,
            "Status": self.status,
            "Health": self.health,
            "HealthStatus": {"Green": "Ok", "Red": "Severe", "Grey": "Pending"}.get(self.health, "Unknown"),
            "AbortableOperationInProgress": False,
            "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
            "EnvironmentArn": f"arn:aws:elasticbeanstalk:{region}:{ACCOUNT}:environment/{self.application}/{self.name}",
        }


class Beanstalk:
    """The state and the actions; :class:`BeanstalkServer` puts it on HTTP."""

    def __init__(
        self, s3: Any, launcher: Launcher, *, region: str = "us-east-1", health_timeout: float = 60.0, ssm: Any = None
    ) -> None:
        self.s3, self.launcher, self.region, self.health_timeout, self.ssm = s3, launcher, region, health_timeout, ssm
        self.model = botocore.session.get_session().get_service_model("elasticbeanstalk")
        self.lock = threading.RLock()
        self.applications: dict[str, datetime] = {}
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}
        self.environments: list[Environment] = []
        self.events: list[dict[str, Any]] = []
        self.calls: list[str] = []

    # helpers

    def _event(self, env: Environment | None, message: str, severity: str = "INFO", application: str | None = None) -> None:
        self.events.append(
            {
                "EventDate": _now(),
                "Message": message,
                "ApplicationName": env.application if env else application,
                "EnvironmentName": env.name if env else None,
                "VersionLabel": env.version if env else None,
                "Severity": severity,
            }
        )

    def _application(self, name: str | None) -> str:
        if not name or name not in self.applications:
            raise EBError("InvalidParameterValue", f"No Application named '{name}' found.")
        return name

    def _live(self) -> list[Environment]:
        return [env for env in self.environments if env.status != "Terminated"]

    def _find(self, name: str | None = None, env_id: str | None = None) -> Environment:
        for env in self._live():
            if (name and env.name == name) or (env_id and env.id == env_id):
                return env
        raise EBError("InvalidParameterValue", f"No Environment found for EnvironmentName = '{name or env_id}'.")

    def cname_target(self, host: str) -> int | None:
        """The port of the container serving CNAME ``host`` now, if any."""
        with self.lock:
            for env in self._live():
                if env.cname == host and env.port:
                    return env.port
        return None

    def handle(self, action: str, params: dict[str, str]) -> str:
        try:
            operation = self.model.operation_model(action)
        except Exception:
            raise EBError("InvalidAction", f"The action {action} is not valid for this web service.") from None
        method = getattr(self, f"do_{action}", None)
        if method is None:
            raise EBError("InvalidAction", f"{action} is not implemented by macaron's Elastic Beanstalk stand-in.")
        args = parse_params(operation.input_shape, params)
        with self.lock:
            self.calls.append(action)
            result = method(**args) or {}
        body = ""
        if operation.output_shape is not None:
            body = f"<{action}Result>{to_xml(operation.output_shape, result)}</{action}Result>"
        return f'<{action}Response xmlns="{XMLNS}">{body}<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>'

    # applications and versions

    def do_CreateApplication(self, ApplicationName: str, **_: Any) -> dict[str, Any]:
        if ApplicationName in self.applications:
            raise EBError("InvalidParameterValue", f"Application {ApplicationName} already exists.")
        self.applications[ApplicationName] = _now()
        return {"Application": self._describe_application(ApplicationName)}

    def _describe_application(self, name: str) -> dict[str, Any]:
        return {
            "ApplicationName": name,
            "DateCreated": self.applications[name],
            "Versions": [label for (app, label) in self.versions if app == name],
            "ApplicationArn": f"arn:aws:elasticbeanstalk:{self.region}:{ACCOUNT}:application/{name}",
        }

    def do_DescribeApplications(self, ApplicationNames: list[str] | None = None, **_: Any) -> dict[str, Any]:
        names = [n for n in self.applications if not ApplicationNames or n in ApplicationNames]
        return {"Applications": [self._describe_application(n) for n in names]}

    def do_CreateApplicationVersion(
        self, ApplicationName: str, VersionLabel: str, SourceBundle: dict[str, str] | None = None, Description: str | None = None, **_: Any
    ) -> dict[str, Any]:
        self._application(ApplicationName)
        if (ApplicationName, VersionLabel) in self.versions:
            raise EBError("InvalidParameterValue", f"Application Version {VersionLabel} already exists.")
        if not SourceBundle:
            raise EBError("InvalidParameterCombination", "A source bundle is required.")
        try:
            self.s3.head_object(Bucket=SourceBundle["S3Bucket"], Key=SourceBundle["S3Key"])
        except Exception:
            raise EBError(
                "InvalidParameterCombination",
                f"Unable to download from S3 location (Bucket: {SourceBundle['S3Bucket']}  Key: {SourceBundle['S3Key']}).",
            ) from None
        version = {
            "ApplicationName": ApplicationName,
            "VersionLabel": VersionLabel,
            "Description": Description,
            "SourceBundle": SourceBundle,
            "DateCreated": _now(),
            "DateUpdated": _now(),
            "Status": "PROCESSED",
            "ApplicationVersionArn": f"arn:aws:elasticbeanstalk:{self.region}:{ACCOUNT}:applicationversion/{ApplicationName}/{VersionLabel}",
        }
        self.versions[(ApplicationName, VersionLabel)] = version
        self._event(None, f"Created new Application Version: {VersionLabel}", application=ApplicationName)
        return {"ApplicationVersion": version}

    def do_DescribeApplicationVersions(
        self, ApplicationName: str | None = None, VersionLabels: list[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        found = [
            v
            for (app, label), v in self.versions.items()
            if (not ApplicationName or app == ApplicationName) and (not VersionLabels or label in VersionLabels)
        ]
        return {"ApplicationVersions": sorted(found, key=lambda v: v["DateCreated"], reverse=True)}

    def do_DeleteApplicationVersion(self, ApplicationName: str, VersionLabel: str, DeleteSourceBundle: bool = False, **_: Any) -> None:
        version = self.versions.get((ApplicationName, VersionLabel))
        if version is None:
            raise EBError("InvalidParameterValue", f"Application Version {VersionLabel} does not exist.")
        if any(env.version == VersionLabel and env.application == ApplicationName for env in self._live()):
            raise EBError(
                "OperationInProgressFailure",
                f"Unable to delete application version {VersionLabel}: it is deployed to a running environment.",
            )
        if DeleteSourceBundle:
            self.s3.delete_object(Bucket=version["SourceBundle"]["S3Bucket"], Key=version["SourceBundle"]["S3Key"])
        del self.versions[(ApplicationName, VersionLabel)]

    # environments

    def do_ListAvailableSolutionStacks(self, **_: Any) -> dict[str, Any]:
        # Newest first, as the service lists them.
        stacks = [
            "64bit Amazon Linux 2023 v4.4.0 running Docker",
            "64bit Amazon Linux 2023 v4.3.0 running Docker",
            "64bit Amazon Linux 2023 v4.4.0 running Python 3.11",
        ]
        return {"SolutionStacks": stacks, "SolutionStackDetails": [{"SolutionStackName": s, "PermittedFileTypes": ["zip"]} for s in stacks]}

    def do_CheckDNSAvailability(self, CNAMEPrefix: str, **_: Any) -> dict[str, Any]:
        cname = f"{CNAMEPrefix}.{self.region}.elasticbeanstalk.com"
        return {"Available": all(env.cname != cname for env in self._live()), "FullyQualifiedCNAME": cname}

    def do_CreateEnvironment(
        self,
        ApplicationName: str,
        EnvironmentName: str,
        VersionLabel: str | None = None,
        CNAMEPrefix: str | None = None,
        SolutionStackName: str | None = None,
        OptionSettings: list[dict[str, str]] | None = None,
        Tags: list[dict[str, str]] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self._application(ApplicationName)
        if any(env.name == EnvironmentName for env in self._live()):
            raise EBError("InvalidParameterValue", f"Environment {EnvironmentName} already exists.")
        if not VersionLabel or (ApplicationName, VersionLabel) not in self.versions:
            raise EBError("InvalidParameterValue", f"No Application Version named '{VersionLabel}' found.")
        cname = f"{CNAMEPrefix or EnvironmentName}.{self.region}.elasticbeanstalk.com"
        if any(env.cname == cname for env in self._live()):
            raise EBError("InvalidParameterValue", f"DNS name ({cname}) is not available.")
        settings = {(o["Namespace"], o["OptionName"]): o.get("Value", "") for o in OptionSettings or []}
        env = Environment(
            name=EnvironmentName,
            id=f"e-{uuid.uuid4().hex[:10]}",
            application=ApplicationName,
            version=VersionLabel,
            stack=SolutionStackName or "64bit Amazon Linux 2023 v4.3.0 running Docker",
            cname=cname,
            settings=settings,
            tags={t["Key"]: t["Value"] for t in Tags or []},
        )
        self.environments.append(env)
        self._event(env, "createEnvironment is starting.")
        threading.Thread(target=self._run, args=(env,), name=f"eb-{EnvironmentName}", daemon=True).start()
        return env.describe(self.region)

    def _run(self, env: Environment) -> None:
        """Launch the environment's container, then follow its health until it is terminated."""
        try:
            image = self._image(env)
            env.port = free_port()
            variables = {name: value for (namespace, name), value in env.settings.items() if namespace == ENV_NAMESPACE}
            variables.update(self._fetch_secrets(env))
            env.container = self.launcher(image, env.port, variables)
        except Exception as exc:
            with self.lock:
                env.status, env.health, env.updated = "Ready", "Red", _now()
                self._event(env, f"Failed to launch environment: {exc}", "ERROR")
            return
        with self.lock:
            self._event(env, f"Instance deployment: started the image {image}.")
        path = env.settings.get((PROCESS_NAMESPACE, "HealthCheckPath"), "/")
        deadline = time.monotonic() + self.health_timeout
        launched = False
        while not env.stopped.wait(0.3):
            healthy = _answers(env.port, path)
            with self.lock:
                before = env.health
                if healthy:
                    env.health = "Green"
                elif launched or time.monotonic() > deadline:
                    env.health = "Red"
                if not launched and (healthy or time.monotonic() > deadline):
                    launched = True
                    env.status, env.updated = "Ready", _now()
                    if healthy:
                        self._event(env, f"Successfully launched environment: {env.name}")
                    else:
                        self._event(env, f"Environment health check {path} failed: the instance never answered 200", "ERROR")
                if env.health != before and before != "Grey":
                    self._event(
                        env,
                        f"Environment health has transitioned from {before} to {env.health}.",
                        "WARN" if env.health == "Red" else "INFO",
                    )

    def _fetch_secrets(self, env: Environment) -> dict[str, str]:
        """What a host does at launch: each environment secret read from Parameter Store by its ARN."""
        fetched = {}
        for (namespace, name), arn in env.settings.items():
            if namespace != SECRETS_NAMESPACE:
                continue
            if self.ssm is None or ":ssm:" not in arn or ":parameter/" not in arn:
                raise RuntimeError(f"environment secret {name}: {arn} is not a Parameter Store ARN this stand-in can read")
            fetched[name] = self.ssm.get_parameter(Name=arn.split(":parameter", 1)[1], WithDecryption=True)["Parameter"]["Value"]
        return fetched

    def _image(self, env: Environment) -> str:
        bundle = self.versions[(env.application, env.version)]["SourceBundle"]
        body = self.s3.get_object(Bucket=bundle["S3Bucket"], Key=bundle["S3Key"])["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            dockerrun = json.loads(archive.read("Dockerrun.aws.json"))
        return str(dockerrun["Image"]["Name"])

    def do_DescribeEnvironments(
        self,
        ApplicationName: str | None = None,
        EnvironmentNames: list[str] | None = None,
        EnvironmentIds: list[str] | None = None,
        VersionLabel: str | None = None,
        IncludeDeleted: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        found = [
            env.describe(self.region)
            for env in self.environments
            if (not ApplicationName or env.application == ApplicationName)
            and (not EnvironmentNames or env.name in EnvironmentNames)
            and (not EnvironmentIds or env.id in EnvironmentIds)
            and (not VersionLabel or env.version == VersionLabel)
            and (IncludeDeleted or env.status != "Terminated")
        ]
        return {"Environments": found}

    def do_ListTagsForResource(self, ResourceArn: str, **_: Any) -> dict[str, Any]:
        for env in self.environments:
            if env.describe(self.region)["EnvironmentArn"] == ResourceArn:
                return {"ResourceArn": ResourceArn, "ResourceTags": [{"Key": k, "Value": v} for k, v in env.tags.items()]}
        raise EBError("ResourceNotFoundException", f"Resource {ResourceArn} not found.", 404)

    def do_DescribeEvents(
        self,
        ApplicationName: str | None = None,
        EnvironmentName: str | None = None,
        StartTime: str | None = None,
        MaxRecords: int | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        since = datetime.fromisoformat(StartTime.replace("Z", "+00:00")) if StartTime else None
        found = [
            e
            for e in reversed(self.events)
            if (not ApplicationName or e["ApplicationName"] == ApplicationName)
            and (not EnvironmentName or e["EnvironmentName"] == EnvironmentName)
            and (since is None or e["EventDate"] >= since)
        ]
        return {"Events": found[: MaxRecords or 1000]}

    def do_SwapEnvironmentCNAMEs(
        self,
        SourceEnvironmentName: str | None = None,
        DestinationEnvironmentName: str | None = None,
        SourceEnvironmentId: str | None = None,
        DestinationEnvironmentId: str | None = None,
        **_: Any,
    ) -> None:
        source = self._find(SourceEnvironmentName, SourceEnvironmentId)
        destination = self._find(DestinationEnvironmentName, DestinationEnvironmentId)
        for env in (source, destination):
            if env.status != "Ready":
                raise EBError("InvalidParameterValue", f"Environment {env.name} is in an invalid state for this operation. Must be Ready.")
        source.cname, destination.cname = destination.cname, source.cname
        source.updated = destination.updated = _now()
        self._event(source, f"Completed swapping CNAMEs for environments '{source.name}' and '{destination.name}'.")

    def do_TerminateEnvironment(self, EnvironmentName: str | None = None, EnvironmentId: str | None = None, **_: Any) -> dict[str, Any]:
        env = self._find(EnvironmentName, EnvironmentId)
        env.status, env.updated = "Terminating", _now()
        self._event(env, "terminateEnvironment is starting.")
        described = env.describe(self.region)
        threading.Thread(target=self._terminate, args=(env,), daemon=True).start()
        return described

    def _terminate(self, env: Environment) -> None:
        env.stopped.set()
        if env.container is not None:
            with contextlib.suppress(Exception):
                env.container.stop()
        with self.lock:
            env.status, env.health, env.port, env.updated = "Terminated", "Grey", 0, _now()
            self._event(env, f"terminateEnvironment completed successfully: {env.name}")

    def close(self) -> None:
        for env in list(self._live()):
            self._terminate(env)


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


# --- HTTP: the API, and the proxy that resolves CNAMEs ---------------------------------------------


def _api_handler(eb: Beanstalk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            try:
                body, status = eb.handle(params.get("Action", ""), params), 200
            except EBError as exc:
                status = exc.status
                body = (
                    f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{exc.code}</Code>'
                    f"<Message>{escape(exc.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
                )
            except Exception as exc:  # a stand-in bug reaches the client as the 500 the real service would send
                status = 500
                body = f"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>{escape(repr(exc))}</Message></Error></ErrorResponse>"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _proxy_handler(eb: Beanstalk) -> type[BaseHTTPRequestHandler]:
    hop_by_hop = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "upgrade", "te", "trailer"}

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            target = urlsplit(self.path)
            host = (target.hostname or self.headers.get("Host") or "").split(":")[0]
            path = (target.path or "/") + (f"?{target.query}" if target.query else "") if target.scheme else self.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            port = eb.cname_target(host)
            if port is None:
                self._reply(502, {"Content-Type": "text/plain"}, f"no environment answers for {host}\n".encode())
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request(self.command, path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self._reply(answer.status, {k: v for k, v in answer.getheaders() if k.lower() not in hop_by_hop | {"content-length"}}, data)
            except OSError as exc:
                self._reply(502, {"Content-Type": "text/plain"}, f"{host}: {exc}\n".encode())
            finally:
                connection.close()

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Proxy


class BeanstalkServer:
    """The stand-in on two 127.0.0.1 ports: ``endpoint_url`` for boto3, ``proxy_url`` for HTTP clients."""

    def __init__(
        self, s3: Any, launcher: Launcher, *, region: str = "us-east-1", health_timeout: float = 60.0, ssm: Any = None
    ) -> None:
        self.eb = Beanstalk(s3, launcher, region=region, health_timeout=health_timeout, ssm=ssm)
        self._servers = [
            ThreadingHTTPServer(("127.0.0.1", 0), _api_handler(self.eb)),
            ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(self.eb)),
        ]
        for server in self._servers:
            server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.proxy_url = f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def start(self) -> BeanstalkServer:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.eb.close()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @contextlib.contextmanager
    def running(self) -> Iterator[BeanstalkServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
