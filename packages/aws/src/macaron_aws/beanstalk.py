"""Blue/green deploys to Elastic Beanstalk: a new environment per version, gated by the service's own tests.

The pipeline (docs/deploy.md): check, image, version, green, gate, live. Live changes only by swapping CNAMEs
once the new environment is Green and its acceptance and contract tests passed against it; until then, and on
any failure, what was live stays live. A run cut off half way is picked up by the next one: the version and the
green environment are found by name and reused. AWS is reached only through boto3, so endpoints come from
boto3's own configuration (``AWS_ENDPOINT_URL_<SERVICE>``, ``~/.aws/config``), as in any boto3 program.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from macaron.config import Config
from macaron.deploying import DeployError, Pipeline, check_service, mask_environment, run_gate, wait_for_version
from macaron.image import ImageError, build_image, find_tool
from macaron_aws.settings import BeanstalkSettings, load_settings

ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"
CONTAINER_PORT = 8080
HISTORY = "live.json"
TAG_SERVICE = "macaron:service"
TAG_VERSION = "macaron:version"
TAG_REVISION = "macaron:revision"


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


class Beanstalk:
    """One ``macaron deploy beanstalk`` run: deploy, roll back, or clean up."""

    def __init__(
        self,
        root: Path,
        config: Config,
        options: dict[str, Any],
        *,
        settings: BeanstalkSettings | None = None,
        pipeline: Pipeline | None = None,
        base: str | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.options = options
        self.version = str(options.get("version") or config.get("version") or "local")
        self.env = options.get("env")
        self.settings = settings or load_settings(config, str(config.get("name") or root.name), environ=dict(os.environ))
        self.pipeline = pipeline or Pipeline("beanstalk", as_json=bool(options.get("json")))
        self.base = base  # None: image.base of macaron.yaml, else the default base
        self.secrets: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._session: boto3.Session | None = None

    # -- AWS ------------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Find the region and the credentials: local look-ups only, no call to AWS yet."""
        # No probe of the EC2 metadata service unless asked for: a deploy from a laptop must not hang on it.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        if not self.settings.region:
            raise DeployError("no AWS region: set deploy.beanstalk.region in macaron.yaml, or AWS_REGION; nothing was deployed")
        session = boto3.Session(region_name=self.settings.region)
        if session.get_credentials() is None:
            raise DeployError(
                "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or write ~/.aws/credentials (docs/deploy.md lists the permissions needed); nothing was deployed"
            )
        self._session = session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            assert self._session is not None, "connect() first"
            self._clients[service] = self._session.client(service, config=BotoConfig(retries={"mode": "standard", "max_attempts": 5}))
        return self._clients[service]

    def call(self, service: str, operation: str, **arguments: Any) -> Any:
        try:
            return getattr(self.client(service), operation)(**arguments)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise DeployError(_aws_error(exc)) from exc

    # -- what is there ----------------------------------------------------------------------------

    @property
    def live_prefix(self) -> str:
        return self.settings.cname

    def environments(self) -> list[dict[str, Any]]:
        found = self.call("elasticbeanstalk", "describe_environments", ApplicationName=self.settings.application, IncludeDeleted=False)
        return [env for env in found["Environments"] if env["Status"] not in ("Terminated", "Terminating")]

    def environment(self, name: str) -> dict[str, Any] | None:
        return next((env for env in self.environments() if env["EnvironmentName"] == name), None)

    def live_environment(self) -> dict[str, Any] | None:
        return next((env for env in self.environments() if (env.get("CNAME") or "").startswith(f"{self.live_prefix}.")), None)

    def url_of(self, env: dict[str, Any]) -> str:
        return f"http://{env['CNAME']}"

    def bucket(self) -> str:
        if self.settings.bucket:
            return self.settings.bucket
        account = self.call("sts", "get_caller_identity")["Account"]
        return f"macaron-{self.settings.application.lower()}-{account}"[:63]

    def ensure_bucket(self, bucket: str) -> None:
        try:
            self.client("s3").head_bucket(Bucket=bucket)
            return
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise DeployError(f"bucket {bucket}: {_aws_error(exc)}") from exc
        where = {} if self.settings.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.settings.region}}
        self.call("s3", "create_bucket", Bucket=bucket, **where)
        self.pipeline.say(f"created the bucket {bucket}")

    def read_history(self, bucket: str) -> list[dict[str, Any]]:
        return self._history(bucket)[0]

    def _history(self, bucket: str) -> tuple[list[dict[str, Any]], str | None]:
        """Which environment went live when, and the ETag of that record (None when there is none yet)."""
        try:
            found = self.client("s3").get_object(Bucket=bucket, Key=f"{self.settings.application}/{HISTORY}")
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                return [], None
            raise DeployError(f"reading {HISTORY}: {_aws_error(exc)}") from exc
        history: list[dict[str, Any]] = json.loads(found["Body"].read()).get("live", [])
        return history, str(found["ETag"])

    def record_live(self, bucket: str, env: dict[str, Any], version: str) -> None:
        """Append to the record with a conditional write, so that two deployers never lose each other's entry."""
        entry = {"version": version, "environment": env["EnvironmentName"], "at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        for _ in range(10):
            history, etag = self._history(bucket)
            body = json.dumps({"live": [*history, entry][-50:]}, indent=1).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.client("s3").put_object(
                    Bucket=bucket, Key=f"{self.settings.application}/{HISTORY}", Body=body, ContentType="application/json", **condition
                )
                return
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    raise DeployError(f"writing {HISTORY}: {_aws_error(exc)}") from exc
        raise DeployError(f"{HISTORY} kept changing under this deploy (another deploy of {self.settings.application} at the same time?)")

    # -- the steps --------------------------------------------------------------------------------

    def option_settings(self, secrets: dict[str, str]) -> list[dict[str, str]]:
        s = self.settings
        options = [
            ("aws:autoscaling:launchconfiguration", "InstanceType", s.instance_type),
            ("aws:autoscaling:launchconfiguration", "IamInstanceProfile", s.instance_profile),
            ("aws:autoscaling:asg", "MinSize", str(s.min_hosts)),
            ("aws:autoscaling:asg", "MaxSize", str(s.max_hosts)),
            ("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
            ("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
            ("aws:elasticbeanstalk:environment", "ServiceRole", s.service_role),
            ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath", s.health_check_path),
            ("aws:elasticbeanstalk:environment:process:default", "Port", "80"),
            ("aws:elasticbeanstalk:healthreporting:system", "SystemType", "enhanced"),
            ("aws:elasticbeanstalk:command", "DeploymentPolicy", "Rolling"),
            ("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateEnabled", "true"),
            ("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType", "Health"),
            ("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs", "true"),
            ("aws:elasticbeanstalk:cloudwatch:logs", "RetentionInDays", "30"),
        ]
        if s.notification:
            options.append(("aws:elasticbeanstalk:sns:topics", "Notification Endpoint", s.notification))
        if s.certificate:
            options += [
                ("aws:elbv2:listener:443", "Protocol", "HTTPS"),
                ("aws:elbv2:listener:443", "SSLCertificateArns", s.certificate),
            ]
        variables = {**s.environment, "MACARON_VERSION": self.version, **({"MACARON_ENV": self.env} if self.env else {})}
        if s.secrets == "properties":
            variables.update(secrets)
        else:  # the hosts fetch each value at launch: the environment's configuration holds only where it is
            options += [(SECRETS_NAMESPACE, name, reference) for name, reference in sorted(secrets.items())]
        options += [(ENV_NAMESPACE, name, value) for name, value in sorted(variables.items())]
        return [{"Namespace": namespace, "OptionName": name, "Value": value} for namespace, name, value in options]

    def parameter_path(self, environment: str) -> str:
        return f"/macaron/{self.settings.application}/{environment}/"

    def store_secrets(self, environment: str) -> dict[str, str]:
        """``secrets: ssm``: each secret as a SecureString parameter of this environment's; their ARNs."""
        account = self.call("sts", "get_caller_identity")["Account"]
        references = {}
        for name, value in sorted(self.secrets.items()):
            parameter = f"{self.parameter_path(environment)}{name}"
            self.call("ssm", "put_parameter", Name=parameter, Value=value, Type="SecureString", Overwrite=True)
            references[name] = f"arn:aws:ssm:{self.settings.region}:{account}:parameter{parameter}"
        return references

    def forget_secrets(self, environment: str) -> None:
        if self.settings.secrets != "ssm":
            return
        found = self.call("ssm", "get_parameters_by_path", Path=self.parameter_path(environment), Recursive=True)["Parameters"]
        names = [parameter["Name"] for parameter in found]
        if names:
            self.call("ssm", "delete_parameters", Names=names)

    def bundle(self, image: str) -> bytes:
        """The source bundle: a Dockerrun.aws.json naming the pushed image; no secret, no code (the image has it)."""
        dockerrun = {"AWSEBDockerrunVersion": "1", "Image": {"Name": image, "Update": "true"}, "Ports": [{"ContainerPort": CONTAINER_PORT}]}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo("Dockerrun.aws.json", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, json.dumps(dockerrun, indent=2, sort_keys=True))
        return buffer.getvalue()

    def registry(self) -> str:
        """Where the image goes: the configured registry, else the account's ECR (repository made, login done)."""
        if self.settings.registry:
            return self.settings.registry
        repository = self.settings.application.lower()
        try:
            found = self.client("ecr").describe_repositories(repositoryNames=[repository])["repositories"][0]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "RepositoryNotFoundException":
                raise DeployError(_aws_error(exc)) from exc
            found = self.call("ecr", "create_repository", repositoryName=repository, imageScanningConfiguration={"scanOnPush": True})["repository"]
            self.pipeline.say(f"created the ECR repository {repository}")
        host = str(found["repositoryUri"]).split("/", 1)[0]
        token = self.call("ecr", "get_authorization_token")["authorizationData"][0]
        user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        self.pipeline.secrets["ECR token"] = password
        tool = find_tool(self.config.section("image").get("builder")).runner
        done = subprocess.run([tool.path, "login", "--username", user, "--password-stdin", host], input=password, capture_output=True, text=True)
        if done.returncode != 0:
            raise DeployError(f"logging in to {host} failed: {self.pipeline.mask(done.stderr.strip())}")
        return host

    def wait_ready(self, name: str) -> dict[str, Any]:
        """Follow the new environment until Ready and Green, printing its events; fail on Red, Terminated or timeout."""
        deadline = time.monotonic() + self.settings.timeout
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=60)
        seen: set[tuple[str, str]] = set()
        while True:
            events = self.call(
                "elasticbeanstalk", "describe_events", ApplicationName=self.settings.application, EnvironmentName=name, StartTime=since
            )["Events"]
            for event in reversed(events):
                key = (str(event["EventDate"]), event["Message"])
                if key not in seen:
                    seen.add(key)
                    self.pipeline.say(f"  {event.get('Severity', 'INFO')}: {event['Message']}")
            found = self.call("elasticbeanstalk", "describe_environments", EnvironmentNames=[name], IncludeDeleted=False)["Environments"]
            env: dict[str, Any] | None = found[0] if found else None
            if env is None or env["Status"] in ("Terminated", "Terminating"):
                raise DeployError(f"environment {name} went away while launching")
            if env["Status"] == "Ready" and env.get("Health") == "Green":
                return env
            if env["Status"] == "Ready" and env.get("Health") == "Red":
                raise DeployError(f"environment {name} is Ready but its health is Red (the hosts fail {self.settings.health_check_path})")
            if time.monotonic() > deadline:
                raise DeployError(
                    f"environment {name} not Ready and Green after {self.settings.timeout:g} s (status {env['Status']}, health {env.get('Health')})"
                )
            time.sleep(self.settings.poll)

    def terminate(self, name: str, why: str) -> None:
        if self.options.get("keep_failed"):
            self.pipeline.say(f"{why}: kept {name} (--keep-failed); terminate it with --cleanup")
            return
        self.call("elasticbeanstalk", "terminate_environment", EnvironmentName=name)
        self.forget_secrets(name)
        self.pipeline.say(f"{why}: terminating {name}")

    def live_summary(self) -> str:
        live = self.live_environment()
        return f"{live['EnvironmentName']} ({live['VersionLabel']}) is still live" if live else "nothing was live before, nothing is now"

    # -- commands ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.options.get("rollback"):
            return self.rollback()
        if self.options.get("cleanup"):
            return self.cleanup(int(self.options.get("keep") or self.settings.keep))
        if self.options.get("dry_run"):
            return self.dry_run()
        return self.deploy()

    def dry_run(self) -> dict[str, Any]:
        with self.pipeline.step("check"):
            checked = check_service(self.root, self.env, gate=False)
            self.pipeline.secrets.update(checked.secrets)
        name = self.settings.environment_name(self.version)
        if self.settings.secrets == "ssm":
            references = {n: f"ssm:{self.parameter_path(name)}{n}" for n in checked.secrets}
            settings = self.option_settings(references)
        else:
            settings = self.option_settings(checked.secrets)
        shown = mask_environment({o["OptionName"]: o["Value"] for o in settings if o["Namespace"] == ENV_NAMESPACE}, list(checked.secrets))
        plan = {
            "application": self.settings.application,
            "region": self.settings.region or "(not set: AWS_REGION or deploy.beanstalk.region)",
            "version": self.version,
            "revision": checked.commit.revision if checked.commit else None,
            "green": name,
            "green_cname": self.settings.environment_cname(self.version),
            "live_cname": self.live_prefix,
            "image": f"{self.config.get('name')}:{self.version} -> {self.settings.registry or 'ECR repository ' + self.settings.application.lower()}",
            "environment": shown,
            "option_settings": [o for o in settings if o["Namespace"] != ENV_NAMESPACE],
        }
        for key, value in plan.items():
            if key != "option_settings":
                self.pipeline.say(f"would deploy: {key} = {value}")
        return self.pipeline.summary(url=f"http://{self.live_prefix}.{self.settings.region or '<region>'}.elasticbeanstalk.com", dry_run=True, plan=plan)

    def deploy(self) -> dict[str, Any]:
        s = self.settings
        with self.pipeline.step("check") as step:
            checked = check_service(self.root, self.env)
            self.secrets = checked.secrets
            self.pipeline.secrets.update(checked.secrets)
            self.connect()
            step.detail["revision"] = checked.commit.revision[:12] if checked.commit else "none"
        name = s.environment_name(self.version)
        with self.pipeline.step("image") as step:
            registry = self.registry()
            try:
                built = build_image(self.root, version=self.version, base=self.base, push=registry, progress=lambda line: self.pipeline.say(f"  {line}"))
            except ImageError as exc:
                raise DeployError(str(exc)) from exc
            assert built.pushed is not None
            step.detail.update(image=built.pushed, id=built.id[:19])
        with self.pipeline.step("version") as step:
            bucket = self.application_version(built.pushed, built.revision)
            step.detail["label"] = self.version
        live = self.live_environment()
        if live is not None and live["EnvironmentName"] == name:
            raise DeployError(f"version {self.version} is live already ({name}); deploy another version, or --rollback")
        with self.pipeline.step("green") as step:
            green = self.green(name, first=live is None)
            step.detail.update(environment=name, url=self.url_of(green))
        with self.pipeline.step("gate") as step:
            gate = run_gate(self.url_of(green), self.root, env=self.env, secrets=self.secrets)
            step.detail["tests"] = "passed" if gate.passed else "FAILED"
            if not gate.passed:
                self.pipeline.say(f"the gate's report (last lines):\n{gate.tail()}")
                self.terminate(name, "the gate failed")
                step.ok = False
        if not gate.passed:
            raise DeployError(f"acceptance or contract tests failed against {name}; nothing was swapped: {self.live_summary()}")
        with self.pipeline.step("live") as step:
            if live is not None:
                self.call("elasticbeanstalk", "swap_environment_cnames", SourceEnvironmentName=name, DestinationEnvironmentName=live["EnvironmentName"])
            live_url = f"http://{self.live_environment_cname(name)}"
            step.detail["waited"] = wait_for_version(live_url, self.version, timeout=s.timeout, interval=min(s.poll, 2.0), progress=self.pipeline.say)
            self.record_live(bucket, {"EnvironmentName": name}, self.version)
            step.detail["url"] = live_url
        return self.pipeline.summary(
            url=live_url,
            version=self.version,
            environment=name,
            previous=live["EnvironmentName"] if live else None,
            image=built.pushed,
        )

    def live_environment_cname(self, name: str) -> str:
        for _ in range(30):
            live = self.live_environment()
            if live is not None and live["EnvironmentName"] == name:
                return str(live["CNAME"])
            time.sleep(min(self.settings.poll, 1.0))
        raise DeployError(f"after the swap, {name} does not hold the live CNAME {self.live_prefix}")

    def application_version(self, image: str, revision: str | None) -> str:
        s = self.settings
        applications = self.call("elasticbeanstalk", "describe_applications", ApplicationNames=[s.application])["Applications"]
        if not applications:
            self.call("elasticbeanstalk", "create_application", ApplicationName=s.application, Description=f"macaron service {self.config.get('name')}")
            self.pipeline.say(f"created the application {s.application}")
        bucket = self.bucket()
        described = f"macaron {revision or 'uncommitted'} {image}"
        existing = self.call("elasticbeanstalk", "describe_application_versions", ApplicationName=s.application, VersionLabels=[self.version])
        if existing["ApplicationVersions"]:
            if existing["ApplicationVersions"][0].get("Description") != described:
                raise DeployError(
                    f"version {self.version} of {s.application} exists already from another build "
                    f"({existing['ApplicationVersions'][0].get('Description')}); give this one another version"
                )
            self.pipeline.say(f"version {self.version} exists already from this commit: reused")
            return bucket
        self.ensure_bucket(bucket)
        key = f"{s.application}/{self.version}.zip"
        self.call("s3", "put_object", Bucket=bucket, Key=key, Body=self.bundle(image))
        self.call(
            "elasticbeanstalk",
            "create_application_version",
            ApplicationName=s.application,
            VersionLabel=self.version,
            Description=described,
            SourceBundle={"S3Bucket": bucket, "S3Key": key},
            Process=False,
        )
        return bucket

    def solution_stack(self) -> str:
        if self.settings.solution_stack:
            return self.settings.solution_stack
        stacks = self.call("elasticbeanstalk", "list_available_solution_stacks")["SolutionStacks"]
        docker = [stack for stack in stacks if stack.endswith("running Docker")]
        if not docker:
            raise DeployError("the region offers no 'running Docker' solution stack: set deploy.beanstalk.solution_stack")
        return str(docker[0])  # the API lists the newest first

    def green(self, name: str, *, first: bool) -> dict[str, Any]:
        existing = self.environment(name)
        if existing is not None:
            self.pipeline.say(f"environment {name} exists already (an earlier run cut off?): following it")
        else:
            self.call(
                "elasticbeanstalk",
                "create_environment",
                ApplicationName=self.settings.application,
                EnvironmentName=name,
                VersionLabel=self.version,
                CNAMEPrefix=self.live_prefix if first else self.settings.environment_cname(self.version),
                SolutionStackName=self.solution_stack(),
                OptionSettings=self.option_settings(self.store_secrets(name) if self.settings.secrets == "ssm" else self.secrets),
                Tags=[
                    {"Key": TAG_SERVICE, "Value": str(self.config.get("name"))},
                    {"Key": TAG_VERSION, "Value": self.version},
                ],
            )
            self.pipeline.say(f"creating {name}" + (" under the live CNAME (first deploy)" if first else ""))
        try:
            return self.wait_ready(name)
        except DeployError as exc:
            self.terminate(name, "green never became Ready and Green")
            raise DeployError(f"{exc}; {self.live_summary()}") from exc

    def rollback(self) -> dict[str, Any]:
        with self.pipeline.step("check"):
            self.connect()
        with self.pipeline.step("rollback") as step:
            live = self.live_environment()
            if live is None:
                raise DeployError(f"no live environment holds the CNAME {self.live_prefix}: nothing to roll back")
            bucket = self.bucket()
            standing = {env["EnvironmentName"]: env for env in self.environments() if env["Status"] == "Ready"}
            target = next(
                (entry for entry in reversed(self.read_history(bucket)) if entry["environment"] != live["EnvironmentName"] and entry["environment"] in standing),
                None,
            )
            if target is None:
                raise DeployError(f"no earlier live environment is still standing: {live['EnvironmentName']} stays live")
            self.call("elasticbeanstalk", "swap_environment_cnames", SourceEnvironmentName=target["environment"], DestinationEnvironmentName=live["EnvironmentName"])
            url = f"http://{self.live_environment_cname(target['environment'])}"
            step.detail["waited"] = wait_for_version(url, target["version"], timeout=self.settings.timeout, interval=1.0, progress=self.pipeline.say)
            self.record_live(bucket, {"EnvironmentName": target["environment"]}, target["version"])
            step.detail.update(environment=target["environment"], version=target["version"])
        return self.pipeline.summary(url=url, version=target["version"], environment=target["environment"], previous=live["EnvironmentName"])

    def cleanup(self, keep: int) -> dict[str, Any]:
        if keep < 1:
            raise DeployError("--keep must be at least 1: the live environment always stays")
        with self.pipeline.step("check"):
            self.connect()
        with self.pipeline.step("cleanup") as step:
            live = self.live_environment()
            kept: list[str] = [live["EnvironmentName"]] if live else []
            for entry in reversed(self.read_history(self.bucket())):
                if len(kept) >= keep:
                    break
                if entry["environment"] not in kept:
                    kept.append(entry["environment"])
            terminated = []
            for env in self.environments():
                if env["EnvironmentName"] in kept or not self.made_by_macaron(env):
                    continue
                self.call("elasticbeanstalk", "terminate_environment", EnvironmentName=env["EnvironmentName"])
                self.forget_secrets(env["EnvironmentName"])
                terminated.append(env["EnvironmentName"])
                self.pipeline.say(f"terminating {env['EnvironmentName']} ({env['VersionLabel']})")
            step.detail.update(kept=", ".join(kept) or "none", terminated=", ".join(terminated) or "none")
        return self.pipeline.summary(url=self.url_of(live) if live else None, kept=kept, terminated=terminated)

    def made_by_macaron(self, env: dict[str, Any]) -> bool:
        tags = self.call("elasticbeanstalk", "list_tags_for_resource", ResourceArn=env["EnvironmentArn"])["ResourceTags"]
        return any(tag["Key"] == TAG_SERVICE for tag in tags)
