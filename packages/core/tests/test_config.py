"""macaron.yaml, its per-environment overlay, secrets from the environment, and PyMacaron's pym-config.yaml."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from macaron import config as config_module
from macaron import create_app, get_config
from macaron.cli import cli
from macaron.config import Config, ConfigError, load_config
from service_maker import ServiceMaker

SECRET_VALUE = "s3cr3t-value-nobody-may-see-7f2a"

CONFIG_HANDLERS = """
from macaron import get_config

def show():
    config = get_config()
    return {"name": config.name, "greeting": config.greeting, "db_host": config.db.host, "env": config.env or ""}
"""

CONFIG_SPEC = """
paths:
  /show:
    get:
      x-bind-server: HANDLERS.show
      responses:
        200:
          description: what the handler sees
          schema: {type: object, additionalProperties: true}
"""


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text))


@pytest.fixture
def no_global_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_current", None)  # as in a fresh process: no app created yet


@pytest.fixture
def service(services: ServiceMaker) -> Path:
    root = services.write(CONFIG_SPEC, CONFIG_HANDLERS)
    write(
        root,
        "macaron.yaml",
        """\
        name: configured
        greeting: hello
        db: {host: localhost, port: 5432}
        """,
    )
    write(
        root,
        "macaron.staging.yaml",
        """\
        greeting: hello from staging
        db: {host: staging-db}
        """,
    )
    return root


# -- overlay -----------------------------------------------------------------------------


def test_the_env_overlay_is_merged_key_by_key_over_macaron_yaml(service: Path) -> None:
    base = load_config(service)
    assert (base.greeting, base.db.host, base.db.port, base.env) == ("hello", "localhost", 5432, None)
    staging = load_config(service, "staging")
    assert staging.greeting == "hello from staging"
    assert staging.db.host == "staging-db"
    assert staging.db.port == 5432  # kept from macaron.yaml
    assert staging.env == "staging"
    assert [f.name for f in staging.files] == ["macaron.yaml", "macaron.staging.yaml"]


def test_macaron_env_chooses_the_overlay_a_handler_sees(service: Path, services: ServiceMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACARON_ENV", "staging")
    response = services.build(service).test_client().get("/show")
    assert response.json == {"name": "configured", "greeting": "hello from staging", "db_host": "staging-db", "env": "staging"}
    version = services.build(service).test_client().get("/version")
    assert version.json["env"] == "staging"


def test_each_app_in_a_process_sees_its_own_config_in_its_requests(service: Path, services: ServiceMaker) -> None:
    staging = create_app(service, env="staging").test_client()
    plain = create_app(service).test_client()
    assert staging.get("/show").json["greeting"] == "hello from staging"
    assert plain.get("/show").json["greeting"] == "hello"


def test_env_option_of_the_cli_picks_the_overlay(service: Path) -> None:
    write(service, "macaron.broken.yaml", "name: [unclosed\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(service), "--env", "staging"], env={"MACARON_ENV": ""})
    assert result.exit_code == 0, result.output
    assert "configured" in result.output
    result = runner.invoke(cli, ["routes", str(service), "--env", "broken"], env={"MACARON_ENV": ""})
    assert result.exit_code != 0
    assert "macaron.broken.yaml: not valid YAML" in result.output


# -- secrets -----------------------------------------------------------------------------


def test_env_secrets_replace_the_values_equal_to_their_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        "macaron.yaml",
        """\
        name: secretive
        env_secrets: [JWT_SECRET, DB_PASSWORD]
        jwt_secret: JWT_SECRET
        db: {password: DB_PASSWORD, user: JWT_SECRET_USER}
        backends: [DB_PASSWORD, plain]
        """,
    )
    monkeypatch.setenv("JWT_SECRET", SECRET_VALUE)
    monkeypatch.setenv("DB_PASSWORD", "pw-123456")
    config = load_config(tmp_path)
    assert config.jwt_secret == SECRET_VALUE
    assert config.db.password == "pw-123456"
    assert config.db.user == "JWT_SECRET_USER"  # only whole values are replaced
    assert config.backends == ["pw-123456", "plain"]


def test_a_missing_secret_stops_create_app_naming_the_variable_and_the_file(
    services: ServiceMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = services.write(CONFIG_SPEC, CONFIG_HANDLERS, config={"env_secrets": ["JWT_SECRET", "OTHER_SECRET"], "jwt_secret": "JWT_SECRET"})
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("OTHER_SECRET", "set")
    with pytest.raises(ConfigError) as caught:
        create_app(root)
    message = str(caught.value)
    assert "JWT_SECRET" in message
    assert "OTHER_SECRET" not in message
    assert str(root / "macaron.yaml") in message
    monkeypatch.setenv("JWT_SECRET", "")
    with pytest.raises(ConfigError, match="JWT_SECRET listed in env_secrets is empty"):
        create_app(root)


def test_macaron_validate_fails_on_a_missing_secret(services: ServiceMaker) -> None:
    root = services.write(CONFIG_SPEC, CONFIG_HANDLERS, config={"env_secrets": ["MACARON_TEST_UNSET_SECRET"]})
    result = CliRunner().invoke(cli, ["validate", str(root)], env={"MACARON_TEST_UNSET_SECRET": None})
    assert result.exit_code != 0
    assert "MACARON_TEST_UNSET_SECRET" in result.output


def test_secrets_listed_by_an_overlay_add_to_those_of_the_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "macaron.yaml", "name: s\nenv_secrets: [JWT_SECRET]\njwt_secret: JWT_SECRET\n")
    write(tmp_path, "macaron.live.yaml", "env_secrets: [SENTRY_DSN]\nsentry: SENTRY_DSN\n")
    monkeypatch.setenv("JWT_SECRET", SECRET_VALUE)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, "live")
    assert "macaron.live.yaml" in str(caught.value)
    assert "SENTRY_DSN" in str(caught.value)
    monkeypatch.setenv("SENTRY_DSN", "https://dsn.example/1")
    live = load_config(tmp_path, "live")
    assert live.jwt_secret == SECRET_VALUE  # the base file's secret is still substituted
    assert live.sentry == "https://dsn.example/1"


def test_secret_values_stay_out_of_repr_str_and_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        "macaron.yaml",
        """\
        name: secretive
        env_secrets: [JWT_SECRET]
        jwt_secret: JWT_SECRET
        nested: {key: JWT_SECRET, visible: yes-visible}
        db_password: written-in-the-file
        """,
    )
    monkeypatch.setenv("JWT_SECRET", SECRET_VALUE)
    with caplog.at_level(logging.DEBUG, logger="macaron"):
        config = load_config(tmp_path)
    assert caplog.records, "loading the config at DEBUG writes a line"
    assert "JWT_SECRET" in caplog.text  # the variable's name is fine to log...
    assert SECRET_VALUE not in caplog.text  # ...its value is not
    assert "written-in-the-file" not in caplog.text
    assert "yes-visible" in caplog.text
    for text in (repr(config), str(config), repr(config.nested), f"{config}"):
        assert SECRET_VALUE not in text
    assert config.masked()["jwt_secret"] == "****"
    assert config.masked()["nested"] == {"key": "****", "visible": "yes-visible"}
    assert config.masked()["db_password"] == "****"
    assert config.redact(f"connecting with {SECRET_VALUE} now") == "connecting with **** now"
    assert config.jwt_secret == SECRET_VALUE


# -- PyMacaron migration -------------------------------------------------------------------


def test_a_pymacaron_pym_config_yaml_is_read_when_there_is_no_macaron_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        "pym-config.yaml",
        """\
        name: legacy
        live_host: https://legacy.example.com
        env_secrets: [JWT_SECRET]
        jwt_secret: JWT_SECRET
        jwt_audience: legacy-audience
        """,
    )
    write(tmp_path, "pym-config.live.yaml", "live_host: https://live.legacy.example.com\n")
    monkeypatch.setenv("JWT_SECRET", SECRET_VALUE)
    monkeypatch.delenv("MACARON_ENV", raising=False)
    monkeypatch.delenv("PYM_ENV", raising=False)
    config = load_config(tmp_path)
    assert (config.name, config.jwt_secret, config.jwt_audience) == ("legacy", SECRET_VALUE, "legacy-audience")
    assert config.files == (tmp_path.resolve() / "pym-config.yaml",)
    monkeypatch.setenv("PYM_ENV", "live")  # PyMacaron's variable still picks the overlay
    assert load_config(tmp_path).live_host == "https://live.legacy.example.com"
    monkeypatch.delenv("JWT_SECRET")
    with pytest.raises(ConfigError, match=r"pym-config\.yaml: environment variable JWT_SECRET"):
        load_config(tmp_path)  # PyMacaron silently used the string "JWT_SECRET" as the secret


# -- get_config() and attribute access --------------------------------------------------------


def test_get_config_outside_a_request_loads_the_service_named_by_macaron_service(
    service: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_global_config: None
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MACARON_SERVICE", str(service))
    monkeypatch.setenv("MACARON_ENV", "staging")
    config = get_config()
    assert config.name == "configured"
    assert config.greeting == "hello from staging"
    assert get_config() is config  # loaded once


def test_get_config_outside_a_request_defaults_to_the_current_folder(
    service: Path, monkeypatch: pytest.MonkeyPatch, no_global_config: None
) -> None:
    monkeypatch.delenv("MACARON_SERVICE", raising=False)
    monkeypatch.delenv("MACARON_ENV", raising=False)
    monkeypatch.chdir(service)
    assert get_config().greeting == "hello"


def test_attribute_access_nested_sections_and_clear_errors(service: Path) -> None:
    config = load_config(service)
    assert isinstance(config.db, Config)
    assert config.db.host == "localhost"
    assert config["db"]["port"] == 5432
    assert config.get("absent", 7) == 7
    assert config.section("absent") == {}
    with pytest.raises(AttributeError, match=r"no 'jwt_secret' in .*macaron.yaml"):
        _ = config.jwt_secret
    with pytest.raises(AttributeError, match="read-only"):
        config.greeting = "changed"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="'greeting' must be a mapping"):
        config.section("greeting")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "macaron.yaml: no such file"),
        ({"macaron.yaml": "name: [broken\n"}, "macaron.yaml: not valid YAML"),
        ({"macaron.yaml": "- a list\n"}, "macaron.yaml: must hold a mapping"),
        ({"macaron.yaml": "version: 1\n"}, "macaron.yaml: 'name' is required"),
        ({"macaron.yaml": "name: x\nenv_secrets: JWT_SECRET\n"}, "macaron.yaml: 'env_secrets' must be a list"),
    ],
)
def test_config_errors_name_the_file(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)
