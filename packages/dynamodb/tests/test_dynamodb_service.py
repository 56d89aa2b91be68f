"""The package as a user meets it: `macaron plugins list`, `macaron dynamodb create-tables`, and the store example under gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import requests
from ddb_support import REPO, Services

from servers import executable, gunicorn_service

STORE = REPO / "examples" / "store"


# Only this package's plugin: other installed plugins (a test plugin that decorates errors...) stay out.
ONLY_DYNAMODB = {"MACARON_LOAD_PLUGINS": "dynamodb"}


def macaron(*args: str, env: dict[str, str] | None = None, every_plugin: bool = False) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **({} if every_plugin else ONLY_DYNAMODB), **(env or {})}
    if every_plugin:
        environment.pop("MACARON_LOAD_PLUGINS", None)
    return subprocess.run([executable("macaron"), *args], capture_output=True, text=True, timeout=60, env=environment)


def test_plugins_list_shows_the_package_and_its_hooks() -> None:
    result = macaron("plugins", "list", "--json", every_plugin=True)
    assert result.returncode == 0, result.stderr
    (entry,) = [plugin for plugin in json.loads(result.stdout) if plugin["name"] == "dynamodb"]
    assert entry["distribution"] == "macaron-dynamodb"
    assert entry["module"] == "macaron_dynamodb.plugin"
    assert {"persist_model", "register_commands"} <= set(entry["hooks"])


def test_create_tables_creates_once_then_checks(moto_services: Services) -> None:
    root = moto_services.write(
        """
        Event:
          type: object
          x-persist:
            table: events
            hash_key: stream
            range_key: at
            ttl: expires
            indexes:
              by_kind: {hash_key: kind, range_key: at, projection: keys_only}
          properties:
            stream: {type: string}
            at: {type: string, format: date-time}
            kind: {type: string}
            expires: {type: integer}
        """
    )
    first = macaron("dynamodb", "create-tables", str(root), "--wait")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith("_events: created, time to live on 'expires', active")

    second = macaron("dynamodb", "create-tables", str(root))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().endswith("_events: exists")

    prefix = first.stdout.split("events")[0].strip()
    changed = moto_services.write(
        """
        Event:
          type: object
          x-persist: {table: events, hash_key: stream}
          properties:
            stream: {type: string}
        """,
        config={"dynamodb": {"endpoint_url": moto_services.endpoint, "region": "us-east-1", "table_prefix": prefix}},
    )
    refused = macaron("dynamodb", "create-tables", str(changed))
    assert refused.returncode == 1
    assert "exists but differs from Event's x-persist: its key is (stream, at), the spec says (stream, None)" in refused.stderr


def test_create_tables_reports_a_broken_spec_and_an_unreachable_server(moto_services: Services, tmp_path: Path) -> None:
    broken = moto_services.write("Thing:\n  type: object\n  x-persist: {table: things}\n  properties: {id: {type: string}}\n")
    result = macaron("dynamodb", "create-tables", str(broken))
    assert result.returncode == 1 and "/definitions/Thing/x-persist: hash_key is required" in result.stderr

    unreachable = moto_services.write(
        "Thing:\n  type: object\n  x-persist: {table: things, hash_key: id}\n  properties: {id: {type: string}}\n",
        config={"dynamodb": {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "max_retries": 0, "connect_timeout": 1}},
    )
    result = macaron("dynamodb", "create-tables", str(unreachable))
    assert result.returncode == 1 and "Could not connect to the endpoint URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_credentials_the_error_says_so_and_no_metadata_service_is_asked(moto_services: Services) -> None:
    root = moto_services.write("Thing:\n  type: object\n  x-persist: {table: things, hash_key: id}\n  properties: {id: {type: string}}\n")
    bare = {name: value for name, value in os.environ.items() if not name.startswith("AWS_") or name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    bare.update({"AWS_EC2_METADATA_DISABLED": "true", "MACARON_LOAD_PLUGINS": "dynamodb", "HOME": str(root)})
    result = subprocess.run([executable("macaron"), "dynamodb", "create-tables", str(root)], capture_output=True, text=True, timeout=60, env=bare)
    assert result.returncode == 1
    assert "no AWS credentials found (environment, ~/.aws/credentials or an instance role)" in result.stderr


def check(response: requests.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_the_store_example_stores_reads_queries_and_deletes_through_its_endpoints(moto: str) -> None:
    env = {"AWS_ENDPOINT_URL_DYNAMODB": moto}
    created = macaron("dynamodb", "create-tables", str(STORE), "--wait", env=env)
    assert created.returncode == 0 and "store-items: created, active" in created.stdout, created.stderr

    with gunicorn_service(STORE, env={**env, **ONLY_DYNAMODB}) as url:
        items = f"{url}/v1/items"
        lamp = {"id": "lamp", "owner": "ann", "name": "Lamp", "price": 12.0, "stock": 3, "dimensions": {"width": 20.0, "height": 45.5}}
        stored = check(requests.post(items, json=lamp, timeout=10), 201)
        assert stored["version"] == 1 and stored["created_at"].endswith("Z")

        again = check(requests.post(items, json=lamp, timeout=10), 409)
        assert again["error"] == "ITEM_EXISTS"

        read = check(requests.get(f"{items}/lamp", timeout=10), 200)
        assert read == stored
        assert type(read["price"]) is float and type(read["stock"]) is int and type(read["dimensions"]["width"]) is float

        update = {key: value for key, value in read.items() if key not in ("id", "created_at")}
        update["price"] = 10.5
        updated = check(requests.put(f"{items}/lamp", json=update, timeout=10), 200)
        assert (updated["price"], updated["version"]) == (10.5, 2)
        stale = check(requests.put(f"{items}/lamp", json={**update, "price": 9.0}, timeout=10), 409)
        assert stale["error"] == "ITEM_CONFLICT" and "version 1" in stale["error_description"]

        for n in range(4):
            check(requests.post(items, json={"id": f"chair-{n}", "owner": "ann", "name": f"Chair {n}", "price": float(n)}, timeout=10), 201)
        check(requests.post(items, json={"id": "desk", "owner": "bob", "name": "Desk", "price": 99.0}, timeout=10), 201)

        listing = f"{url}/v1/owners/ann/items"
        first = check(requests.get(listing, params={"limit": 2}, timeout=10), 200)
        assert [item["id"] for item in first["items"]] == ["chair-3", "chair-2"]  # newest first
        seen = [item["id"] for item in first["items"]]
        cursor = first["cursor"]
        for _ in range(5):
            if cursor is None:
                break
            page = check(requests.get(listing, params={"limit": 2, "cursor": cursor}, timeout=10), 200)
            seen += [item["id"] for item in page["items"]]
            cursor = page["cursor"]
        assert seen == ["chair-3", "chair-2", "chair-1", "chair-0", "lamp"]
        cheap = check(requests.get(listing, params={"min_price": 2.5}, timeout=10), 200)
        assert [item["id"] for item in cheap["items"]] == ["chair-3", "lamp"]

        bad = check(requests.get(listing, params={"cursor": "forged"}, timeout=10), 400)
        assert bad["error"] == "INVALID_CURSOR"

        check(requests.delete(f"{items}/lamp", timeout=10), 204)
        gone = check(requests.get(f"{items}/lamp", timeout=10), 404)
        assert gone["error"] == "ITEM_NOT_FOUND"
        check(requests.delete(f"{items}/lamp", timeout=10), 404)
