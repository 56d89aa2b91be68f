"""/docs in a real browser: the example service under gunicorn, Swagger UI rendered by headless chromium."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from servers import gunicorn_service

EXAMPLE = Path(__file__).parents[1] / "examples" / "helloworld"
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def helloworld() -> Iterator[str]:
    with gunicorn_service(EXAMPLE, {"MACARON_ENV": ""}) as url:
        yield url


def rendered_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` once its scripts ran, as headless chromium sees it."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (tests/system-packages.txt lists it; `nox -s tests` installs it on Debian)")
    # The --disable-* flags keep chromium from calling home: the only network is 127.0.0.1.
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_the_operations(helloworld: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{helloworld}/docs", tmp_path / "profile")
    # Set by the page's onComplete: Swagger UI loaded the spec and rendered it.
    assert 'data-macaron-docs="rendered"' in dom
    assert "<title>helloworld API docs</title>" in dom
    for path, summary in [
        ("/hello/{name}", "Say hello to someone, in some languages."),
        ("/questions", "Ask a question; get an answer."),
        ("/upload", "Upload a file with a caption; get back what the server saw."),
    ]:
        assert f'data-path="{path}"' in dom
        assert summary in dom
    # The built-in API is listed in the selector, not rendered as the first definition.
    assert 'data-path="/ping"' not in dom
    assert '<option value="/docs/ping.json">ping</option>' in dom


def test_swagger_ui_renders_the_other_api(helloworld: str, tmp_path: Path) -> None:
    dom = rendered_dom(f"{helloworld}/docs?urls.primaryName=ping", tmp_path / "profile")
    assert 'data-path="/ping"' in dom and 'data-path="/version"' in dom
    assert 'data-path="/hello/{name}"' not in dom


def string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [string_keys(item) for item in value]
    return value


def test_specs_over_http(helloworld: str) -> None:
    source = yaml.safe_load((EXAMPLE / "apis" / "helloworld.yaml").read_text())
    as_yaml = requests.get(f"{helloworld}/docs/helloworld.yaml", timeout=10)
    as_json = requests.get(f"{helloworld}/docs/helloworld.json", timeout=10)
    assert as_yaml.status_code == as_json.status_code == 200
    assert as_yaml.headers["Content-Type"].startswith("application/yaml")
    assert as_json.headers["Content-Type"].startswith("application/json")
    # The example has no host, schemes or external $ref: the served spec is the file, with
    # YAML's integer response codes as strings, as JSON has them.
    assert as_json.json() == string_keys(source)
    assert yaml.safe_load(as_yaml.text) == as_json.json()
    missing = requests.get(f"{helloworld}/docs/nope.json", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "NOT_FOUND"
    assert "no API named 'nope'" in missing.json()["error_description"]


def test_off_in_production_over_http() -> None:
    with gunicorn_service(EXAMPLE, {"MACARON_ENV": "production"}) as url:
        response = requests.get(f"{url}/docs", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"] == "NOT_FOUND"
        assert requests.get(f"{url}/docs/helloworld.json", timeout=10).status_code == 404
        assert requests.get(f"{url}/ping", timeout=10).status_code == 200
