"""Task arguments, settings and decorator options: what needs no broker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from async_support import write_service

from macaron import apis, create_app
from macaron.config import ConfigError
from macaron.context import CallContext, get_request_id, get_userid, use
from macaron_async import AsyncSettings, TaskArgumentError, asynctask, is_task
from macaron_async.runtime import build_celery, runtime
from macaron_async.serialize import decode, encode, encode_call
from macaron_async.settings import settings_from_config
from servers import free_port

HANDLERS = """
import os
from macaron import apis
from macaron.context import get_userid

def run(n):
    return apis.PKG.Item(n=n)
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> str:
    root, package = write_service(tmp_path_factory.mktemp("units"), HANDLERS, {"mode": "inprocess"})
    create_app(root)
    return package


def test_models_lists_and_dicts_of_models_travel_as_json_and_come_back_as_models(package: str) -> None:
    models = getattr(apis, package)
    item = models.Item(n=1, name="one")
    basket = models.Basket(items=[models.Item(n=2), models.Item(n=3)])
    wire = encode({"item": item, "basket": basket, "list": [item, [item]], "plain": {"n": 1}})
    text = json.dumps(wire)  # what the broker carries
    back = decode(json.loads(text))
    assert type(back["item"]) is models.Item and back["item"].n == 1 and back["item"].name == "one"
    assert type(back["basket"]) is models.Basket
    assert [type(i) for i in back["basket"].items] == [models.Item, models.Item]
    assert [i.n for i in back["basket"].items] == [2, 3]
    assert type(back["list"][0]) is models.Item and type(back["list"][1][0]) is models.Item
    assert back["plain"] == {"n": 1}


def test_sent_arguments_are_a_snapshot(package: str) -> None:
    item = getattr(apis, package).Item(n=1)
    wire = encode(item)
    item.n = 2  # the handler changes the model after queueing the task
    assert decode(wire).n == 1


def test_user_data_looking_like_a_tagged_model_stays_plain_data(package: str) -> None:
    tricky: dict[str, Any] = {"__macaron_model__": "nope.Nothing", "data": {"x": 1}}
    nested = {"__macaron_dict__": {"a": 1}}
    model = getattr(apis, package).Item(name="__macaron_model__")
    back = decode(json.loads(json.dumps(encode([tricky, nested, model]))))
    assert back[0] == tricky
    assert back[1] == nested
    assert back[2].name == "__macaron_model__"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "argument 0: a set cannot be sent to a task"),
        (object(), "argument 0: a object cannot be sent"),
        ([1, {"when": Path("/")}], "argument 0[1]['when']: a PosixPath cannot be sent"),
        ({1: "a"}, "argument 0: dict key 1 is not a string"),
    ],
)
def test_an_argument_that_is_not_json_fails_when_sent_naming_it(value: Any, message: str) -> None:
    with pytest.raises(TaskArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        encode_call((value,), {})


def test_a_model_the_worker_does_not_have_is_a_clear_error() -> None:
    with pytest.raises(TaskArgumentError, match=r"model nosuchapi\.Thing, which this process does not have"):
        decode({"__macaron_model__": "nosuchapi.Thing", "data": {}})


def test_a_direct_call_outside_a_request_runs_inline_in_the_callers_context() -> None:
    seen: list[Any] = []

    @asynctask(queue="never-used")
    def note(x: int) -> int:
        seen.append((x, get_userid(), get_request_id(), is_task()))
        return x * 2

    with use(CallContext(request_id="r-1", user_id="u-1")):
        assert note(21) == 42
    assert seen == [(21, "u-1", "r-1", False)]
    assert note.run(1) == 2


def test_decorator_options_are_checked() -> None:
    with pytest.raises(ValueError, match="delay must be a number of seconds >= 0"):
        asynctask(delay=-1)(lambda: None)
    with pytest.raises(ValueError, match="retries must be a whole number"):
        asynctask(retries="3")(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_for must be a tuple of exception classes"):
        asynctask(retries=1, retry_for=ValueError)(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay or countdown, not both"):
        asynctask(delay=1, countdown=2)


def test_two_tasks_with_one_name_are_refused() -> None:
    asynctask(name="units.same")(lambda: 1)

    def other() -> int:
        return 2

    with pytest.raises(ValueError, match=r"two tasks are named 'units\.same'"):
        asynctask(name="units.same")(other)


def test_backoff_doubles_up_to_its_cap_and_jitter_keeps_half_to_all_of_it() -> None:
    task = asynctask(retries=5, backoff=2, backoff_max=10, jitter=False)(lambda: None)
    assert [task.backoff_delay(n) for n in range(5)] == [2, 4, 8, 10, 10]
    jittered = asynctask(retries=5, backoff=2, backoff_max=10)(lambda: None)
    for n, full in enumerate([2, 4, 8, 10]):
        assert all(full / 2 <= jittered.backoff_delay(n) <= full for _ in range(20))


def test_settings_defaults() -> None:
    settings = settings_from_config({"name": "shop"})
    assert settings.mode == "celery"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.result_backend is None
    assert settings.queue == "shop"
    assert settings.visibility_timeout == 3600
    assert settings.sweep_interval == 60
    assert settings.sweep_lock_expiry == 120  # a worker killed mid-sweep delays recovery by 2 minutes, not kombu's 5
    transport = build_celery(settings, "shop").conf.broker_transport_options
    assert transport["unacked_mutex_expire"] == 120 and transport["visibility_timeout"] == 3600


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mode": "eager"}, "async.mode must be one of celery, inprocess, not 'eager'"),
        ({"broker": "redis://x"}, "unknown key in 'async': broker"),
        ({"broker_url": "localhost:6379"}, "async.broker_url must be a URL"),
        ({"visibility_timeout": "1h"}, "async.visibility_timeout must be a number of seconds"),
        ({"queue": "a,b"}, "async.queue must be a name without spaces or commas"),
        ({"prefetch_multiplier": 0}, "async.prefetch_multiplier must be a whole number of at least 1"),
        ({"imports": "shop.tasks"}, "async.imports must be a list of module names"),
        ("redis://x", "'async' must be a mapping"),
    ],
)
def test_a_bad_async_section_stops_start_up_naming_file_and_key(section: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="^/srv/shop/macaron.yaml: " + message.replace("(", r"\(")):
        settings_from_config({"name": "shop", "async": section}, "/srv/shop/macaron.yaml")


def test_a_bad_async_section_stops_create_app(tmp_path: Path) -> None:
    root, _ = write_service(tmp_path, HANDLERS, {"mode": "later"})
    with pytest.raises(ConfigError, match=f"{root / 'macaron.yaml'}: async.mode must be one of celery, inprocess"):
        create_app(root)


def test_a_delay_beyond_the_visibility_timeout_is_refused_before_sending() -> None:
    previous = (runtime.settings, runtime.flask_app, runtime.service_name)
    runtime.configure(AsyncSettings(broker_url="redis://127.0.0.1:9/0", visibility_timeout=60))
    try:
        late = asynctask(delay=120)(lambda: None)
        with pytest.raises(ValueError, match=r"a delay of 120 s must be shorter than async.visibility_timeout \(60 s\)"):
            late.fire()
        soon = asynctask(delay=1)(lambda: None)
        with pytest.raises(ValueError, match="a delay of 600 s must be shorter"):
            soon.with_options(delay=600).fire()
    finally:
        if previous[0] is not None:
            runtime.configure(previous[0], previous[1], previous[2])


def test_a_broker_that_is_down_makes_the_endpoint_answer_503_promptly(tmp_path: Path) -> None:
    handlers = """
    from macaron_async import asynctask

    @asynctask
    def work(n):
        return n

    def run(n):
        work(n)
    """
    root, _ = write_service(tmp_path / "service", handlers, {"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_app(root).test_client()
    started = time.monotonic()
    response = client.get("/run/1")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "TASK_QUEUE_UNAVAILABLE"
    assert response.json["error_description"].endswith("could not be queued: the task broker is unreachable")
