"""RabbitMQ as the broker: a private node (own name, ports, data and cookie) started for this module, where installed."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from async_support import macaron_worker, rabbitmq_missing, rabbitmq_server, stop, wait_until, write_service

from macaron import apis, create_app, service_of
from macaron.context import CallContext, use
from macaron_async.runtime import runtime
from macaron_async.settings import settings_from_config

pytestmark = pytest.mark.skipif(rabbitmq_missing() is not None, reason=rabbitmq_missing() or "")

HANDLERS = """
import json, os, time
from pathlib import Path
from macaron.context import get_request_id, get_userid

from macaron_async import asynctask

OUTBOX = Path("OUTBOX_PATH")


@asynctask
def note(key, item, seconds=0.0):
    time.sleep(seconds)
    path = OUTBOX / f"{key}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else 0
    # Written aside, then renamed: the test sees the whole file or none.
    path.with_suffix(".tmp").write_text(json.dumps({"user_id": get_userid(), "request_id": get_request_id(),
                                                    "item": [type(item).__name__, item.n], "pid": os.getpid(), "runs": runs + 1}))
    os.replace(path.with_suffix(".tmp"), path)


def run(n):
    return None
"""


@pytest.fixture(scope="module")
def amqp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with rabbitmq_server(tmp_path_factory.mktemp("rabbitmq")) as port:
        yield port


def test_tasks_go_through_rabbitmq_and_survive_a_killed_worker(amqp_port: int, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    root, package = write_service(tmp_path / "service", HANDLERS.replace("OUTBOX_PATH", str(outbox)), {"broker_url": f"amqp://guest:guest@127.0.0.1:{amqp_port}//"})
    app = create_app(root)
    runtime.configure(settings_from_config(service_of(app).config), app, package)
    handlers = __import__(f"{package}.api", fromlist=["api"])
    item = getattr(apis, package).Item

    with macaron_worker(root, "--concurrency", "2", log=tmp_path / "first.log") as first:
        with use(CallContext(request_id="req-amqp", user_id="user-amqp")):
            handlers.note.fire("hello", item(n=1))
        wait_until(lambda: (outbox / "hello.json").exists(), 15, "the task did not run")
        seen = json.loads((outbox / "hello.json").read_text())
        assert (seen["user_id"], seen["request_id"], seen["item"]) == ("user-amqp", "req-amqp", ["Item", 1])

        for i in range(8):
            handlers.note.fire(f"slow-{i}", item(n=i), 0.5)
        wait_until(lambda: len(list(outbox.glob("slow-*.json"))) >= 2, 20, "the first worker did not finish 2 tasks")
        stop(first.process, signal.SIGKILL)
    assert len(list(outbox.glob("slow-*.json"))) < 8

    # RabbitMQ gives a dead consumer's unacknowledged messages back when its connection drops: no timeout to wait.
    with macaron_worker(root, "--concurrency", "2", log=tmp_path / "second.log"):
        wait_until(lambda: len(list(outbox.glob("slow-*.json"))) == 8, 30, "tasks were lost")
