"""Optimistic locking under real contention: two processes increment one counter through moto's server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ddb_support import Services

from macaron.models import ApiModels
from macaron_dynamodb import ItemConflict, modify

COUNTER = """
Counter:
  type: object
  x-persist: {table: counters, hash_key: name, version: version}
  required: [name, count]
  properties:
    name: {type: string}
    count: {type: integer}
    version: {type: integer}
"""

# Each worker builds the service as a server process would, waits for the go, then
# increments: load, add one, save; on a conflict, load again. Bounded, so a broken
# lock cannot spin forever.
WORKER = textwrap.dedent(
    """
    import json, sys
    from macaron import apis, create_app
    from macaron_dynamodb import ItemConflict

    create_app(sys.argv[1])
    Counter = apis.shop.Counter
    increments, conflicts = int(sys.argv[2]), 0
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(increments):
        for _attempt in range(500):
            counter = Counter.load("hits", consistent=True)
            counter.count += 1
            try:
                counter.save()
                break
            except ItemConflict:
                conflicts += 1
        else:
            sys.exit("gave up after 500 conflicts in a row")
    print(json.dumps({"conflicts": conflicts}), flush=True)
    """
)
INCREMENTS = 30


def test_two_processes_incrementing_one_item_lose_no_update(moto_services: Services, tmp_path: Path) -> None:
    models = moto_services.models(COUNTER)
    models.Counter(name="hits", count=0).save()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = moto_services.roots[-1]

    workers = [
        subprocess.Popen(
            [sys.executable, str(script), root, str(INCREMENTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:  # both start together, so their load-save cycles interleave
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    assert [worker.returncode for worker in workers] == [0, 0]
    conflicts = sum(json.loads(output.strip().splitlines()[-1])["conflicts"] for output in outputs)
    counter = models.Counter.load("hits", consistent=True)
    assert counter.count == 2 * INCREMENTS
    assert counter.version == 1 + 2 * INCREMENTS  # one version per successful save, none lost
    assert conflicts > 0, "the two workers never collided: the test did not exercise the lock"


def test_modify_retries_a_change_that_lost_a_race(moto_services: Services) -> None:
    models: ApiModels = moto_services.models(COUNTER)
    Counter = models.Counter
    Counter(name="hits", count=0).save()
    calls = []

    def add_one_while_someone_else_adds_ten(counter: object) -> None:
        calls.append(counter.count)  # type: ignore[attr-defined]
        if len(calls) == 1:  # another writer gets in between this load and this save
            other = Counter.load("hits")
            other.count += 10
            other.save()
        counter.count += 1  # type: ignore[attr-defined]

    result = modify(Counter, "hits", add_one_while_someone_else_adds_ten)

    assert calls == [0, 10]  # the first attempt conflicted, the second saw the other write
    assert result.count == 11 and Counter.load("hits").count == 11


def test_modify_creates_a_missing_item_and_gives_up_after_its_attempts(moto_services: Services) -> None:
    Counter = moto_services.models(COUNTER).Counter
    created = modify(Counter, "new", lambda c: setattr(c, "count", c.count + 1), create=lambda: Counter(name="new", count=0))
    assert (created.count, created.version) == (1, 1)

    def always_overtaken(counter: object) -> None:
        other = Counter.load("new")
        other.save()

    with pytest.raises(ItemConflict) as caught:
        modify(Counter, "new", always_overtaken, attempts=3)
    assert caught.value.status == 409
    assert Counter.load("new").version == 1 + 3
