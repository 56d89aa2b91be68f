"""live.json, the record of what went live when: written with conditional writes against moto's S3 server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from macaron.config import load_config
from macaron.deploying import free_port
from macaron_aws.beanstalk import Beanstalk


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server._port}"
    for name, value in {"AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="bundles")
    yield url
    server.stop()


def deployer(root: Path) -> Beanstalk:
    (root / "macaron.yaml").write_text(yaml.safe_dump({"name": "books", "deploy": {"beanstalk": {"bucket": "bundles"}}}))
    deploy = Beanstalk(root, load_config(root), {"version": "1.0.0"})
    deploy.connect()
    return deploy


def test_two_deployers_writing_at_once_lose_no_entry(s3_url: str, tmp_path: Path) -> None:
    first, second = deployer(tmp_path), deployer(tmp_path)

    def write(deploy: Beanstalk, who: str) -> None:
        for n in range(15):
            deploy.record_live("bundles", {"EnvironmentName": f"{who}-{n}"}, f"{who}.{n}")

    threads = [threading.Thread(target=write, args=(deploy, who)) for deploy, who in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = first.read_history("bundles")
    assert sorted(entry["environment"] for entry in history) == sorted(f"{who}-{n}" for who in "ab" for n in range(15))
    # Each writer's own entries stay in its order.
    assert [e["environment"] for e in history if e["environment"].startswith("a")] == [f"a-{n}" for n in range(15)]
