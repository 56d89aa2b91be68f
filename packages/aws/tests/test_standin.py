"""The Elastic Beanstalk stand-in through boto3, over HTTP, against moto's S3 and real processes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from macaron_aws.standin import BeanstalkServer, free_port

CREDS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Process:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("images")

    def launch(image: str, port: int, env: dict[str, str]) -> Process:
        # A real server process standing for the image: it serves /ping and /version (the image name).
        folder = root / image.replace("/", "_").replace(":", "_")
        folder.mkdir(exist_ok=True)
        (folder / "ping").write_text("ok")
        (folder / "version").write_text(image)
        (folder / "env").write_text(json.dumps(env))
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return Process(proc)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    moto.start()
    moto_url = f"http://127.0.0.1:{moto._port}"
    s3 = boto3.client("s3", endpoint_url=moto_url, **CREDS)
    s3.create_bucket(Bucket="bundles")
    with BeanstalkServer(s3, launch, health_timeout=5).running() as server:
        eb = boto3.client("elasticbeanstalk", endpoint_url=server.endpoint_url, **CREDS)
        yield {"s3": s3, "eb": eb, "server": server}
    moto.stop()


def _version(aws: dict[str, Any], app: str, label: str) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("Dockerrun.aws.json", json.dumps({"AWSEBDockerrunVersion": "1", "Image": {"Name": f"{app}:{label}"}}))
    aws["s3"].put_object(Bucket="bundles", Key=f"{app}/{label}.zip", Body=data.getvalue())
    aws["eb"].create_application_version(
        ApplicationName=app, VersionLabel=label, SourceBundle={"S3Bucket": "bundles", "S3Key": f"{app}/{label}.zip"}
    )


def _wait_green(eb: Any, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        env = eb.describe_environments(EnvironmentNames=[name], IncludeDeleted=False)["Environments"][0]
        if env["Status"] == "Ready" and env["Health"] in ("Green", "Red"):
            return dict(env)
        time.sleep(0.1)
    raise AssertionError(f"{name} never became Ready")


def test_environments_run_their_version_and_a_cname_swap_changes_what_the_name_serves(aws: dict[str, Any]) -> None:
    eb, proxy = aws["eb"], {"http": aws["server"].proxy_url}
    eb.create_application(ApplicationName="svc")
    for label in ("1", "2"):
        _version(aws, "svc", label)
    settings = [
        {"Namespace": "aws:elasticbeanstalk:environment:process:default", "OptionName": "HealthCheckPath", "Value": "/ping"},
        {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "GREETING", "Value": "hi"},
    ]
    blue = eb.create_environment(
        ApplicationName="svc", EnvironmentName="svc-1", VersionLabel="1", CNAMEPrefix="svc-live", OptionSettings=settings
    )
    green = eb.create_environment(
        ApplicationName="svc", EnvironmentName="svc-2", VersionLabel="2", CNAMEPrefix="svc-2", OptionSettings=settings
    )
    assert blue["CNAME"] == "svc-live.us-east-1.elasticbeanstalk.com"
    assert _wait_green(eb, "svc-1")["Health"] == "Green"
    assert _wait_green(eb, "svc-2")["Health"] == "Green"
    live = f"http://{blue['CNAME']}"
    assert requests.get(f"{live}/version", proxies=proxy, timeout=5).text == "svc:1"
    assert requests.get(f"{live}/env", proxies=proxy, timeout=5).json() == {"GREETING": "hi"}

    eb.swap_environment_cnames(SourceEnvironmentName="svc-1", DestinationEnvironmentName="svc-2")
    assert requests.get(f"{live}/version", proxies=proxy, timeout=5).text == "svc:2"
    assert requests.get(f"http://{green['CNAME']}/version", proxies=proxy, timeout=5).text == "svc:1"
    messages = [e["Message"] for e in eb.describe_events(ApplicationName="svc")["Events"]]
    assert any("swapping CNAMEs" in m for m in messages)

    eb.terminate_environment(EnvironmentName="svc-1")
    deadline = time.monotonic() + 10
    while eb.describe_environments(EnvironmentNames=["svc-1"])["Environments"][0]["Status"] != "Terminated":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert requests.get(f"http://{green['CNAME']}/version", proxies=proxy, timeout=5).status_code == 502


def test_errors_arrive_as_botocore_client_errors(aws: dict[str, Any]) -> None:
    with pytest.raises(aws["eb"].exceptions.ClientError, match="No Application named 'nope'"):
        aws["eb"].create_application_version(ApplicationName="nope", VersionLabel="1", SourceBundle={"S3Bucket": "bundles", "S3Key": "x"})
