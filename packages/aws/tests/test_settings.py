"""deploy.beanstalk in macaron.yaml: defaults from the service, and every mistake named before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from macaron.config import load_config
from macaron.deploying import DeployError
from macaron_aws.beanstalk import Beanstalk
from macaron_aws.settings import DOCUMENTED, BeanstalkSettings, load_settings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "deploy.md"


def service(tmp_path: Path, beanstalk: dict[str, object] | None = None, **top: object) -> Path:
    values: dict[str, object] = {"name": "books", "version": "1.0.0", **top}
    if beanstalk is not None:
        values["deploy"] = {"beanstalk": beanstalk}
    (tmp_path / "macaron.yaml").write_text(yaml.safe_dump(values))
    return tmp_path


def test_no_section_gives_defaults_from_the_service(tmp_path: Path) -> None:
    settings = load_settings(load_config(service(tmp_path)), "books", environ={})
    assert (settings.application, settings.cname, settings.region, settings.health_check_path) == ("books", "books", None, "/ping")
    assert settings.environment_name("1.0.0-rc.1") == "books-1-0-0-rc-1"


def test_the_region_comes_from_the_section_else_the_environment(tmp_path: Path) -> None:
    assert load_settings(load_config(service(tmp_path)), "books", environ={"AWS_REGION": "eu-west-3"}).region == "eu-west-3"
    configured = load_config(service(tmp_path, {"region": "us-west-2"}))
    assert load_settings(configured, "books", environ={"AWS_REGION": "eu-west-3"}).region == "us-west-2"


@pytest.mark.parametrize(
    ("beanstalk", "message"),
    [
        ({"instance": "t3.micro"}, r"unknown setting\(s\) instance \(known: application, region"),
        ({"min_hosts": 3, "max_hosts": 2}, r"min_hosts \(3\) must be <= max_hosts \(2\)"),
        ({"max_hosts": "two"}, r"deploy.beanstalk.max_hosts: a whole number >= 0, not 'two'"),
        ({"timeout": 0}, r"deploy.beanstalk.timeout: a number of seconds > 0"),
        ({"region": 5}, r"deploy.beanstalk.region: a string, not 5"),
        ({"environment": ["A=1"]}, r"deploy.beanstalk.environment: a mapping"),
    ],
)
def test_a_wrong_setting_is_named(tmp_path: Path, beanstalk: dict[str, object], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        load_settings(load_config(service(tmp_path, beanstalk)), "books", environ={})


def test_a_secret_cannot_be_a_plain_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKS_DB_PASSWORD", "pw")
    config = load_config(service(tmp_path, {"environment": {"BOOKS_DB_PASSWORD": "x"}}, env_secrets=["BOOKS_DB_PASSWORD"]))
    with pytest.raises(DeployError, match="BOOKS_DB_PASSWORD are env_secrets"):
        load_settings(config, "books", environ={})


def test_no_region_stops_before_any_aws_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    deploy = Beanstalk(tmp_path, load_config(service(tmp_path)), {"version": "1.0.0"})
    with pytest.raises(DeployError, match=r"no AWS region: set deploy\.beanstalk\.region in macaron\.yaml, or AWS_REGION"):
        deploy.connect()


def test_every_setting_is_documented_in_deploy_md() -> None:
    text = DOCS.read_text()
    section = text[text.index("### deploy.beanstalk in macaron.yaml") :]
    for name in DOCUMENTED:
        assert f"`{name}`" in section, f"deploy.beanstalk.{name} is not in docs/deploy.md"
    assert set(DOCUMENTED) == set(BeanstalkSettings.__dataclass_fields__)
