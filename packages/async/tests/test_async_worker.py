"""Tasks sent through a real redis-server to one real `macaron worker` (prefork, 2 processes) shared by the module."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from async_support import Worker, macaron_worker, wait_until, write_service
from flask import Flask

from macaron import apis, create_app, service_of
from macaron.context import CallContext, use
from macaron_async import TaskArgumentError
from macaron_async.runtime import runtime

HANDLERS = """
import json, logging, os, time
import redis
from macaron import apis
from macaron.context import current, get_request_id, get_token, get_userid
from macaron_async import asynctask, current_task

log = logging.getLogger("PKG")
store = redis.Redis(port=REDIS_PORT, db=1)


class Flaky(Exception):
    pass


def who():
    context = current()
    task = current_task()
    return {
        "user_id": get_userid(), "request_id": get_request_id(), "token": get_token(),
        "claims": context.claims, "call_chain": context.call_chain,
        "task": [task.name, task.attempt] if task else None, "pid": os.getpid(),
    }


@asynctask
def record(key, item, basket, items, mapping, plain):
    log.warning("recording %s", key)
    store.set(key, json.dumps({
        **who(),
        "item": [type(item).__name__, item.n, item.name],
        "basket": [type(basket).__name__, [[type(i).__name__, i.n] for i in basket.items]],
        "items": [type(i).__name__ for i in items],
        "mapping": {k: type(v).__name__ for k, v in mapping.items()},
        "plain": plain,
    }))


@asynctask
def remember(key):
    store.set(key, json.dumps(who()))


@asynctask
def parent(key):
    remember(key + ":child")  # from a task: queued, not run inline
    store.set(key, json.dumps(who()))


@asynctask(retries=3, retry_for=(Flaky,), backoff=0.3, jitter=False)
def flaky(key, failures):
    attempt = store.incr(key + ":attempts")
    store.rpush(key + ":times", time.time())
    if attempt <= failures:
        raise Flaky(f"attempt {attempt} of {key}")
    store.set(key, json.dumps(who()))


@asynctask(retries=3, retry_for=(Flaky,), backoff=0.1)
def undeclared(key):
    store.incr(key + ":attempts")
    raise KeyError(key)


@asynctask
def crash(key):
    raise ValueError(f"cannot do {key}")


@asynctask(delay=1.0)
def later(key):
    store.set(key, time.time())


@asynctask(queue="PKG-side")
def aside(key):
    store.set(key, json.dumps(who()))


@asynctask
def add(a, b):
    return apis.PKG.Item(n=a + b, name="sum")


def reporter(report):
    store.rpush("reports", json.dumps(report, default=str))


def run(n):
    item = apis.PKG.Item(n=n, name="from the endpoint")
    record(f"endpoint:{n}", item, apis.PKG.Basket(items=[item]), [item], {"k": item}, n)
    return item
"""


class Service:
    def __init__(self, root: Path, package: str, app: Flask, worker: Worker, store: redis.Redis) -> None:
        self.root, self.package, self.app, self.worker, self.store = root, package, app, worker, store
        self.handlers: ModuleType = __import__(f"{package}.api", fromlist=["api"])

    @property
    def models(self) -> Any:
        return getattr(apis, self.package)

    def wait_for(self, key: str, timeout: float = 15.0) -> Any:
        wait_until(lambda: self.store.exists(key), timeout, f"no task wrote {key}")
        value = self.store.get(key)
        assert value is not None
        return json.loads(value)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("worker")
    async_config = {"broker_url": f"redis://127.0.0.1:{redis_port}/0", "result_backend": f"redis://127.0.0.1:{redis_port}/2"}
    root, package = write_service(folder / "service", HANDLERS.replace("REDIS_PORT", str(redis_port)), async_config)
    (root / "macaron.yaml").write_text((root / "macaron.yaml").read_text() + f"error_reporter: {package}.api.reporter\n")
    app = create_app(root)
    with macaron_worker(root, "--concurrency", "2", "--queues", f"{package},{package}-side", log=folder / "worker.log") as worker:
        yield Service(root, package, app, worker, redis.Redis(port=redis_port, db=1))


@pytest.fixture(autouse=True)
def this_service(service: Service) -> None:
    """Send tasks with this module's service config (another module's create_app may have changed the runtime)."""
    if runtime.flask_app is not service.app:
        from macaron_async.settings import settings_from_config

        runtime.configure(settings_from_config(service_of(service.app).config), service.app, service.package)


def test_the_callers_context_and_model_arguments_reach_the_worker(service: Service) -> None:
    models = service.models
    item = models.Item(n=1, name="one")
    basket = models.Basket(items=[models.Item(n=2), models.Item(n=3)])
    context = CallContext(request_id="req-ctx-1", user_id="user-7", token="tok.en.x", claims={"sub": "user-7", "role": "admin"}, call_chain=["front"])
    with use(context):
        service.handlers.record.fire("ctx", item, basket, [item, item], {"a": item}, {"nested": [1, "two", None, True, 1.5]})
    seen = service.wait_for("ctx")
    assert seen["user_id"] == "user-7"
    assert seen["request_id"] == "req-ctx-1"
    assert seen["token"] == "tok.en.x"
    assert seen["claims"] == {"sub": "user-7", "role": "admin"}
    assert seen["call_chain"] == ["front"]
    assert seen["item"] == ["Item", 1, "one"]
    assert seen["basket"] == ["Basket", [["Item", 2], ["Item", 3]]]
    assert seen["items"] == ["Item", "Item"]
    assert seen["mapping"] == {"a": "Item"}
    assert seen["plain"] == {"nested": [1, "two", None, True, 1.5]}
    assert seen["task"] == [f"{service.package}.api.record", 1]
    assert seen["pid"] != os.getpid()
    # The task's own log line carries the caller's request id and user id.
    wait_until(lambda: "recording ctx" in service.worker.output(), 5, "the task's log line was not written")
    line = next(line for line in service.worker.output().splitlines() if "recording ctx" in line)
    assert "[req-ctx-1 user-7]" in line


def test_calling_a_task_in_a_request_queues_it_and_answers_at_once(service: Service) -> None:
    response = service.app.test_client().get("/run/5", headers={"X-Request-ID": "req-endpoint-5"})
    assert response.status_code == 200
    assert response.json == {"n": 5, "name": "from the endpoint"}
    seen = service.wait_for("endpoint:5")
    assert seen["pid"] != os.getpid()  # run by the worker, not inline
    assert seen["request_id"] == "req-endpoint-5"
    assert seen["item"] == ["Item", 5, "from the endpoint"]
    assert seen["basket"] == ["Basket", [["Item", 5]]]


def test_a_task_called_from_a_task_is_queued_with_the_same_context(service: Service) -> None:
    with use(CallContext(request_id="req-chain", user_id="user-chain")):
        service.handlers.parent.fire("chain")
    parent, child = service.wait_for("chain"), service.wait_for("chain:child")
    assert child["task"] == [f"{service.package}.api.remember", 1]
    assert (child["request_id"], child["user_id"]) == ("req-chain", "user-chain")
    assert (parent["request_id"], parent["user_id"]) == ("req-chain", "user-chain")


def test_a_declared_exception_is_retried_with_growing_waits(service: Service) -> None:
    with use(CallContext(request_id="req-flaky", user_id="user-flaky")):
        service.handlers.flaky.fire("flaky", 2)
    seen = service.wait_for("flaky")
    assert service.store.get("flaky:attempts") == b"3"
    assert seen["task"][1] == 3  # the third attempt succeeded
    assert seen["request_id"] == "req-flaky"  # retries keep the caller's context
    times = [float(t) for t in service.store.lrange("flaky:times", 0, -1)]
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert waits[0] >= 0.3 - 0.05 and waits[1] >= 0.6 - 0.05, waits


def test_a_failing_task_goes_through_crash_reporting_with_the_callers_ids(service: Service) -> None:
    service.store.delete("reports")
    with use(CallContext(request_id="req-crash", user_id="user-crash")):
        result = service.handlers.crash.fire("the dishes")
    wait_until(lambda: service.store.llen("reports") >= 1, 15, "no crash report")
    report = json.loads(service.store.lindex("reports", 0) or b"{}")
    assert report["title"] == f"task {service.package}.api.crash failed: ValueError: cannot do the dishes"
    assert report["is_fatal"] is True
    assert report["request"]["id"] == "req-crash"
    assert report["user"]["id"] == "user-crash"
    assert report["exception"]["type"] == "ValueError"
    assert "cannot do the dishes" in report["exception"]["trace"]
    assert report["data"]["task_id"] == result.id
    assert report["data"]["args"] == ["the dishes"]
    assert report["service"]["name"] == service.package


def test_an_undeclared_exception_is_not_retried(service: Service) -> None:
    service.store.delete("reports")
    service.handlers.undeclared.fire("undeclared")
    wait_until(lambda: service.store.llen("reports") >= 1, 15, "no crash report")
    time.sleep(0.3)  # a retry, had there been one, would run within 0.1 s
    assert service.store.get("undeclared:attempts") == b"1"
    assert "KeyError" in json.loads(service.store.lindex("reports", 0) or b"{}")["title"]


def test_delay_holds_the_task_back(service: Service) -> None:
    sent = time.time()
    service.handlers.later.fire("later")
    ran = float(service.wait_for("later"))
    assert ran - sent >= 0.95


def test_a_task_with_its_own_queue_runs_on_a_worker_taking_that_queue(service: Service) -> None:
    result = service.handlers.aside.fire("aside")
    assert result.get(timeout=10) is None
    assert service.wait_for("aside")["task"] == [f"{service.package}.api.aside", 1]


def test_with_a_result_backend_the_caller_can_wait_for_the_result(service: Service) -> None:
    result = service.handlers.add.fire(2, 3)
    assert result.get(timeout=10) == {"n": 5, "name": "sum"}


def test_an_argument_that_cannot_travel_fails_in_the_caller_before_anything_is_sent(service: Service) -> None:
    with pytest.raises(TaskArgumentError, match=r"argument key: a set cannot be sent to a task"):
        service.handlers.remember.fire(key={1})
