"""The ``deploy.beanstalk`` section of macaron.yaml: every setting, its default, and the check of what is given."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from macaron.config import Config
from macaron.deploying import DeployError
from macaron.image import secret_names

# What docs/deploy.md documents, in the same order; each default is derived from the service where it can be.
DOCUMENTED = {
    "application": "Elastic Beanstalk application (default: the service's name)",
    "region": "AWS region (required for a real deploy; AWS_REGION / AWS_DEFAULT_REGION are read too)",
    "cname": "CNAME prefix of the live environment: <cname>.<region>.elasticbeanstalk.com (default: the application)",
    "instance_type": "EC2 instance type of the hosts",
    "min_hosts": "autoscaling group minimum",
    "max_hosts": "autoscaling group maximum",
    "health_check_path": "path the load balancer checks; a host is healthy when it answers 200",
    "certificate": "ARN of an ACM certificate: adds an HTTPS listener on 443",
    "notification": "e-mail address that receives the environment's notifications (none by default)",
    "solution_stack": "solution stack name (default: the newest 'running Docker' stack the region offers)",
    "registry": "registry to push the image to, host[/prefix] (default: the account's ECR, repository created if missing)",
    "bucket": "S3 bucket of the source bundles (default: macaron-<application>-<account>, created if missing)",
    "instance_profile": "IAM instance profile of the hosts",
    "service_role": "IAM service role of the environments",
    "secrets": "how env_secrets reach the hosts: 'properties' (environment properties) or 'ssm' (Parameter Store references)",
    "environment": "non-secret environment variables for the service (mapping); env_secrets are added by the deploy",
    "timeout": "seconds to wait for a new environment to be Ready and Green before terminating it",
    "poll": "seconds between two looks at a changing environment",
    "keep": "environments --cleanup keeps by default: the live one and those live before it",
}


SECRET_MODES = ("properties", "ssm")


@dataclass(frozen=True)
class BeanstalkSettings:
    application: str
    region: str | None = None
    cname: str = ""
    instance_type: str = "t3.small"
    min_hosts: int = 1
    max_hosts: int = 2
    health_check_path: str = "/ping"
    certificate: str | None = None
    notification: str | None = None
    solution_stack: str | None = None
    registry: str | None = None
    bucket: str | None = None
    instance_profile: str = "aws-elasticbeanstalk-ec2-role"
    service_role: str = "aws-elasticbeanstalk-service-role"
    secrets: str = "properties"
    environment: dict[str, str] = field(default_factory=dict)
    timeout: float = 900.0
    poll: float = 5.0
    keep: int = 2

    def environment_name(self, version: str) -> str:
        """``<application>-<version>``, as Elastic Beanstalk allows (4 to 40 letters, digits and hyphens)."""
        return _eb_name(f"{self.application}-{version}")

    def environment_cname(self, version: str) -> str:
        return _eb_name(f"{self.cname}-{version}", 63)


def _eb_name(text: str, limit: int = 40) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")
    return cleaned[:limit].rstrip("-")


def load_settings(config: Config, service_name: str, *, environ: dict[str, str] | None = None) -> BeanstalkSettings:
    """Read ``deploy.beanstalk``; every setting has a default, so a dry run or a rehearsal needs no section."""
    section = config.section("deploy").section("beanstalk").to_dict()
    where = f"{config.where()}: deploy.beanstalk"
    unknown = sorted(set(section) - set(DOCUMENTED))
    if unknown:
        raise DeployError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(DOCUMENTED)})")
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(BeanstalkSettings)}
    for name, value in section.items():
        expected = str(types[name])
        if value is None:
            continue
        if expected == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise DeployError(f"{where}.{name}: a whole number >= 0, not {value!r}")
        if expected == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
            raise DeployError(f"{where}.{name}: a number of seconds > 0, not {value!r}")
        if expected == "dict[str, str]":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
                raise DeployError(f"{where}.{name}: a mapping of variable names to values")
            value = {str(k): str(v) for k, v in value.items()}
        if "str" in expected and expected != "dict[str, str]" and not isinstance(value, str):
            raise DeployError(f"{where}.{name}: a string, not {value!r}")
        values[name] = value
    application = _eb_name(values.pop("application", service_name), 100)
    if not application:
        raise DeployError(f"{where}.application: no letters or digits in {service_name!r}")
    settings = BeanstalkSettings(application=application, **values)
    if settings.secrets not in SECRET_MODES:
        raise DeployError(f"{where}.secrets: one of {', '.join(SECRET_MODES)}, not {settings.secrets!r}")
    if settings.min_hosts > settings.max_hosts or settings.max_hosts == 0:
        raise DeployError(f"{where}: min_hosts ({settings.min_hosts}) must be <= max_hosts ({settings.max_hosts}), and max_hosts >= 1")
    secret_clash = sorted(set(settings.environment) & set(secret_names(config.root, config.env))) if config.root else []
    if secret_clash:
        raise DeployError(f"{where}.environment: {', '.join(secret_clash)} are env_secrets: their values come from the deployer's environment")
    env = environ or {}
    region = settings.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return BeanstalkSettings(**{**settings.__dict__, "region": region, "cname": settings.cname or application})
