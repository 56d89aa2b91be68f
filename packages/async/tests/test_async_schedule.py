"""Periodic tasks without processes: cron expressions and next runs on a fixed clock, config and decorator errors, beat's files."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from async_support import write_service
from click.testing import CliRunner

from macaron import create_app
from macaron.config import ConfigError
from macaron_async import AsyncSettings, asynctask
from macaron_async.beat import prepare_beat, state_file
from macaron_async.periodic import periodic_tasks
from macaron_async.runtime import build_celery
from macaron_async.schedule import Schedule, parse_cron, request_id
from macaron_async.settings import settings_from_config
from macaron_async.worker import worker
from macaron_cli import run_macaron

UTC = timezone.utc

HANDLERS = """
import datetime
from macaron_async import asynctask


@asynctask(cron="0 3 * * *")
def nightly():
    return None


@asynctask
def cleanup(days, dry_run=False):
    return days


def not_a_task():
    return None


def run(n):
    return None
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root, package = write_service(tmp_path_factory.mktemp("schedule") / "service", HANDLERS, {"broker_url": "redis://127.0.0.1:9/0"})
    create_app(root)
    return root, package


def _periodic(package: str, schedule: list[dict[str, Any]]) -> Any:
    items = [{key: value.replace("PKG", package) if isinstance(value, str) else value for key, value in item.items()} for item in schedule]
    settings = settings_from_config({"name": "shop", "async": {"schedule": items}}, "/srv/shop/macaron.yaml")
    # The test process holds the tasks of other tests' services too: keep this service's.
    return [p for p in periodic_tasks(settings, "/srv/shop/macaron.yaml") if p.task.func.__module__.startswith(package)]


# -- cron expressions and next runs, on a fixed clock -----------------------------


@pytest.mark.parametrize(
    ("cron", "after", "tz", "expected"),
    [
        # a nightly job: later today, then tomorrow
        ("0 3 * * *", datetime(2026, 11, 22, 1, 0, tzinfo=UTC), "UTC", datetime(2026, 11, 22, 3, 0, tzinfo=UTC)),
        ("0 3 * * *", datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "UTC", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),
        # 03:00 in Paris is 02:00 UTC in winter and 01:00 UTC once summer time starts (29 March 2026)
        ("0 3 * * *", datetime(2026, 3, 27, 12, 0, tzinfo=UTC), "Europe/Paris", datetime(2026, 3, 28, 2, 0, tzinfo=UTC)),
        ("0 3 * * *", datetime(2026, 3, 28, 12, 0, tzinfo=UTC), "Europe/Paris", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # office hours, every quarter: Friday evening -> Monday morning
        ("*/15 9-17 * * mon-fri", datetime(2026, 11, 20, 17, 50, tzinfo=UTC), "UTC", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        ("*/15 9-17 * * 1-5", datetime(2026, 11, 20, 16, 50, tzinfo=UTC), "UTC", datetime(2026, 11, 20, 17, 0, tzinfo=UTC)),
        # the first of the month, and 29 February (the next leap year)
        ("@monthly", datetime(2026, 1, 31, 12, 0, tzinfo=UTC), "UTC", datetime(2026, 2, 1, 0, 0, tzinfo=UTC)),
        ("0 0 29 feb *", datetime(2026, 3, 1, tzinfo=UTC), "UTC", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_the_next_run_of_a_cron_schedule(cron: str, after: datetime, tz: str, expected: datetime) -> None:
    following = Schedule.of(cron=cron).next_run(after, tz)
    assert following == expected
    assert following.tzinfo == ZoneInfo(tz)


def test_every_runs_that_many_seconds_after_the_last_run() -> None:
    assert Schedule.of(every=300).next_run(datetime(2026, 11, 22, 23, 58, tzinfo=UTC)) == datetime(2026, 11, 23, 0, 3, tzinfo=UTC)
    assert Schedule.of(every=timedelta(hours=1)) == Schedule(every=3600.0)


def test_beat_decides_with_the_services_time_zone() -> None:
    """The schedule beat checks is Celery's, in async.timezone: due at 03:00 Paris time, not before."""
    app = build_celery(AsyncSettings(broker_url="amqp://127.0.0.1:9//", timezone="Europe/Paris"), "shop")
    cron = Schedule.of(cron="0 3 * * *").celery_schedule(app)
    last_run = datetime(2026, 3, 28, 2, 0, tzinfo=UTC)  # 03:00 in Paris, the day before summer time
    cron.nowfun = lambda: datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC)
    due, seconds = cron.is_due(last_run)
    assert (due, seconds) == (False, 30)
    cron.nowfun = lambda: datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC)
    assert cron.is_due(last_run)[0] is True


@pytest.mark.parametrize(
    ("cron", "fields"),
    [("0 3 * * *", "0 3 * * *"), ("  */5   * * * * ", "*/5 * * * *"), ("@daily", "0 0 * * *"), ("@HOURLY", "0 * * * *"), ("0 9 * jan,jul sun", "0 9 * jan,jul sun")],
)
def test_cron_expressions_are_read(cron: str, fields: str) -> None:
    assert parse_cron(cron) == fields


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 3 * * *", "minute '61': Invalid end range: 61 > 59 (allowed: 0-59)"),
        ("0 24 * * *", "hour '24': Invalid end range: 24 > 23 (allowed: 0-23)"),
        ("0 3 * * 7", "day of week '7': Invalid end range: 7 > 6 (allowed: 0-6 (Sunday is 0) or sun-sat)"),
        ("mon 3 * * *", "minute 'mon': unexpected characters"),
        ("0 3 * *", "it needs 5 fields (minute hour day-of-month month day-of-week), not 4"),
        ("0 0 31 2 *", "day_of_month '31' never occurs in month_of_year '2'"),
        ("0 3 1 * mon", "give a day of month or a day of week, not both"),
        ("*/0 * * * *", "minute '*/0'"),
    ],
)
def test_a_bad_cron_expression_says_which_field_is_wrong(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match="bad cron expression") as error:
        parse_cron(cron)
    assert f"bad cron expression {cron!r}" in str(error.value)
    assert message in str(error.value)


def test_request_ids_name_the_entry_and_the_time_in_utc() -> None:
    moment = datetime(2026, 11, 22, 4, 0, 5, tzinfo=ZoneInfo("Europe/Paris"))
    assert request_id("shop.jobs.cleanup", moment) == "beat-shop.jobs.cleanup-20261122T030005Z"


# -- the schedule in macaron.yaml ------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"schedule": {"task": "a.b"}}, "async.schedule must be a list of periodic tasks"),
        ({"schedule": ["a.b"]}, "async.schedule[0] must be a mapping with task and every or cron"),
        ({"schedule": [{"task": "a.b", "every": 5, "evry": 5}]}, "unknown key in 'async.schedule[0]': evry"),
        ({"schedule": [{"every": 5}]}, "async.schedule[0].task must be the dotted path of an @asynctask"),
        ({"schedule": [{"task": "a.b"}]}, "async.schedule[0] (a.b) needs every (seconds) or cron ('0 3 * * *'): give one of them"),
        ({"schedule": [{"task": "a.b", "every": 5, "cron": "* * * * *"}]}, "async.schedule[0] (a.b) needs every"),
        ({"schedule": [{"task": "a.b", "every": 0.5}]}, "async.schedule[0].every: every must be a number of seconds of at least 1, not 0.5"),
        ({"schedule": [{"task": "a.b", "every": 5}, {"task": "a.b", "cron": "0 25 * * *"}]}, "async.schedule[1].cron: bad cron expression '0 25 * * *': hour '25'"),
        ({"schedule": [{"task": "a.b", "every": 5, "args": "x"}]}, "async.schedule[0].args must be a list of positional arguments"),
        ({"schedule": [{"task": "a.b", "every": 5, "kwargs": [1]}]}, "async.schedule[0].kwargs must be a mapping of keyword arguments"),
        ({"schedule": [{"task": "a.b", "every": 5, "name": "a b"}]}, "async.schedule[0].name must be letters, digits and _.:-"),
        ({"schedule": [{"task": "a.b", "every": 5, "name": "x"}, {"task": "a.c", "every": 5, "name": "x"}]}, "async.schedule[1].name: async.schedule[0] has the name 'x' too"),
        ({"timezone": "Europe/Pariss"}, "async.timezone: unknown time zone 'Europe/Pariss'"),
        ({"beat_lock_timeout": 1}, "async.beat_lock_timeout must be a number of seconds of at least 3, not 1"),
        ({"beat_state_dir": 7}, "async.beat_state_dir must be a folder path, not 7"),
    ],
)
def test_a_bad_schedule_section_names_file_and_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_config({"name": "shop", "async": section}, "/srv/shop/macaron.yaml")
    assert str(error.value).startswith("/srv/shop/macaron.yaml: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"task": "nosuchmodule.jobs.cleanup", "every": 5}, "async.schedule[0].task: unknown task 'nosuchmodule.jobs.cleanup': there is no module nosuchmodule.jobs"),
        ({"task": "PKG.api.clean_up", "every": 5}, "async.schedule[0].task: unknown task 'PKG.api.clean_up': PKG.api has no clean_up"),
        ({"task": "PKG.api.not_a_task", "every": 5}, "async.schedule[0].task: PKG.api.not_a_task is not an @asynctask"),
        ({"task": "PKG.api.cleanup", "every": 5}, "async.schedule[0] (PKG.api.cleanup): the arguments do not fit PKG.api.cleanup(days, dry_run=False): missing a required argument: 'days'"),
        ({"task": "PKG.api.cleanup", "every": 5, "args": [30], "kwargs": {"dryrun": True}}, "got an unexpected keyword argument 'dryrun'"),
        ({"task": "PKG.api.cleanup", "every": 5, "args": [30, True, 1]}, "too many positional arguments"),
        ({"task": "PKG.api.cleanup", "every": 5, "args": [{"since": datetime(2026, 1, 1)}]}, "async.schedule[0] (PKG.api.cleanup): argument 0['since']: a datetime cannot be sent to a task"),
    ],
)
def test_a_scheduled_task_must_exist_and_take_the_arguments_given(service: tuple[Path, str], item: dict[str, Any], message: str) -> None:
    _, package = service
    with pytest.raises(ConfigError) as error:
        _periodic(package, [item])
    assert str(error.value).startswith("/srv/shop/macaron.yaml: ")
    assert message.replace("PKG", package) in str(error.value)


def test_config_entries_and_decorated_tasks_make_the_periodic_tasks(service: tuple[Path, str]) -> None:
    _, package = service
    periodic = _periodic(package, [{"task": "PKG.api.cleanup", "cron": "30 4 * * *", "args": [30], "kwargs": {"dry_run": True}}])
    assert [(p.name, p.task.name, str(p.schedule), p.args, p.kwargs, p.source) for p in periodic] == [
        (f"{package}.api.cleanup", f"{package}.api.cleanup", "cron 30 4 * * *", [30], {"dry_run": True}, "async.schedule[0]"),
        (f"{package}.api.nightly", f"{package}.api.nightly", "cron 0 3 * * *", [], {}, f"@asynctask in {package}.api"),
    ]


def test_a_config_entry_for_a_decorated_task_replaces_its_schedule_unless_named(service: tuple[Path, str]) -> None:
    _, package = service
    moved = _periodic(package, [{"task": "PKG.api.nightly", "cron": "0 5 * * *"}])
    assert [(p.name, str(p.schedule)) for p in moved] == [(f"{package}.api.nightly", "cron 0 5 * * *")]
    both = _periodic(package, [{"task": "PKG.api.nightly", "cron": "0 5 * * *", "name": "early"}])
    assert {p.name: str(p.schedule) for p in both} == {"early": "cron 0 5 * * *", f"{package}.api.nightly": "cron 0 3 * * *"}
    with pytest.raises(ConfigError, match=r"async.schedule\[1\]: async.schedule\[0\] schedules .*cleanup too; give one of them a name"):
        _periodic(package, [{"task": "PKG.api.cleanup", "every": 5, "args": [1]}, {"task": "PKG.api.cleanup", "every": 9, "args": [2]}])


def test_a_bad_schedule_stops_the_service_at_start_up(tmp_path: Path) -> None:
    root, package = write_service(tmp_path / "service", HANDLERS, {})
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["async"] = {"schedule": [{"task": f"{package}.api.cleanup", "cron": "0 3 * * *"}]}
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=rf"^{root / 'macaron.yaml'}: async.schedule\[0\] \({package}.api.cleanup\): the arguments do not fit"):
        create_app(root)


def test_in_process_mode_warns_that_periodic_tasks_do_not_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root, _ = write_service(tmp_path / "service", HANDLERS, {"mode": "inprocess"})
    with caplog.at_level("WARNING", logger="macaron.async"):
        create_app(root)
    # (the count includes the tasks other tests of this module defined: the registry is the process's)
    assert any(re.fullmatch(r"async: mode inprocess: the \d+ periodic task\(s\) do not run \(they need mode celery, a worker and macaron beat\)", m) for m in caplog.messages)


# -- the decorator ---------------------------------------------------------------


def test_decorator_schedules_are_checked_when_the_module_is_imported() -> None:
    with pytest.raises(ValueError, match="@asynctask: every must be a number of seconds of at least 1, not 0"):
        asynctask(every=0)(lambda: None)
    with pytest.raises(ValueError, match=r"@asynctask: give every \(seconds\) or cron"):
        asynctask(every=60, cron="* * * * *")(lambda: None)
    with pytest.raises(ValueError, match=r"@asynctask: bad cron expression '0 3 \* \*'"):
        asynctask(cron="0 3 * *")(lambda: None)

    def report(day: str) -> None: ...

    with pytest.raises(ValueError, match=r"report\(day: 'str'\) -> 'None' runs every 60 s without arguments, but missing a required argument: 'day'"):
        asynctask(every=60)(report)

    def defaults(day: str = "today") -> None: ...

    assert asynctask(name="units.schedule.defaults", cron="@daily")(defaults).schedule == Schedule(cron="0 0 * * *")


# -- beat's state and lock -------------------------------------------------------


def test_beat_state_defaults_to_a_private_temp_folder_one_file_per_service_and_broker(tmp_path: Path) -> None:
    settings = AsyncSettings(broker_url="redis://:secret@127.0.0.1:6379/0")
    first = state_file(settings, "shop", tmp_path / "shop")
    assert first.parent == Path(tempfile.gettempdir()) / f"macaron-beat-{os.getuid()}"
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert first.name.startswith("shop-") and first.name.endswith(".beat")
    assert state_file(settings, "shop", tmp_path / "shop") == first
    assert state_file(settings, "shop", tmp_path / "other-checkout") != first
    assert state_file(AsyncSettings(broker_url="redis://127.0.0.1:6380/0"), "shop", tmp_path / "shop") != first


def test_beat_state_dir_is_relative_to_the_service_not_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "srv" / "shop"
    assert state_file(AsyncSettings(beat_state_dir="var/beat"), "shop", root) == root / "var" / "beat" / "shop.beat"
    assert (root / "var" / "beat").is_dir()
    assert state_file(AsyncSettings(beat_state_dir="var/beat"), "shop", root, state_dir="elsewhere") == tmp_path / "elsewhere" / "shop.beat"


def test_prepare_beat_puts_the_tasks_on_celery_with_their_arguments_queue_and_state_file(service: tuple[Path, str], tmp_path: Path) -> None:
    _, package = service
    settings = AsyncSettings(broker_url="amqp://127.0.0.1:9//", queue="shop", beat_lock_timeout=30)
    app = build_celery(settings, "shop")
    periodic = _periodic(package, [{"task": "PKG.api.cleanup", "every": 60, "args": [7]}])
    assert prepare_beat(app, settings, "shop", periodic, tmp_path / "shop.beat") is None  # no lock without Redis
    entry = app.conf.beat_schedule[f"{package}.api.cleanup"]
    assert entry["args"] == [[7], {}]
    assert entry["options"]["queue"] == "shop"
    assert app.conf.beat_scheduler == "macaron_async.scheduler:MacaronScheduler"
    assert app.conf.beat_schedule_filename == str(tmp_path / "shop.beat")
    assert app.conf.beat_max_loop_interval == 10  # renews its 30 s lock at least every 10 s


# -- the commands ----------------------------------------------------------------


def test_the_beat_command_and_the_worker_beat_option_exist() -> None:
    result = run_macaron("beat", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--env", "--loglevel", "--state-dir"):
        assert option in result.stdout
    assert "--beat" in CliRunner().invoke(worker, ["--help"]).output


def test_no_beat_for_a_service_whose_tasks_run_in_process(tmp_path: Path) -> None:
    root, _ = write_service(tmp_path / "service", HANDLERS, {"mode": "inprocess"})
    result = run_macaron("beat", str(root))
    assert result.returncode == 1
    assert f"{root / 'macaron.yaml'}: async.mode is inprocess, so tasks run in the web process and periodic tasks do not run" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_schedule_stops_beat_naming_file_and_key(tmp_path: Path) -> None:
    root, _ = write_service(tmp_path / "service", HANDLERS, {"broker_url": "redis://127.0.0.1:9/0", "schedule": [{"task": "shop.jobs.cleanup", "cron": "0 3 * * 8"}]})
    result = run_macaron("beat", str(root))
    assert result.returncode == 1
    assert f"{root / 'macaron.yaml'}: async.schedule[0].cron: bad cron expression '0 3 * * 8': day of week '8'" in result.stderr
    assert "Traceback" not in result.stderr
