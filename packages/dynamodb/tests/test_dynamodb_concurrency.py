"""Under real contention: two processes increment one counter, with optimistic locking (moto's server) and with atomic adds (both servers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

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
    increments, name, conflicts = int(sys.argv[2]), sys.argv[3], 0
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(increments):
        for _attempt in range(500):
            counter = Counter.load(name, consistent=True)
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
# The same race without a read: each increment is one UpdateItem that adds 1.
ADDER = textwrap.dedent(
    """
    import json, sys
    from macaron import apis, create_app

    create_app(sys.argv[1])
    Counter = apis.shop.Counter
    increments, name, seen = int(sys.argv[2]), sys.argv[3], []
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(increments):
        seen.append(Counter.update(name, add={"count": 1}).count)
    print(json.dumps({"seen": seen}), flush=True)
    """
)
INCREMENTS = 30
ADDS = 50


def race(script_text: str, root: str, tmp_path: Path, increments: int, *extra: str) -> list[dict[str, Any]]:
    """Run two workers that start together (so their calls interleave); their last output lines, parsed."""
    script = tmp_path / "worker.py"
    script.write_text(script_text)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), root, str(increments), *extra],
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
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0]
    return [json.loads(output.strip().splitlines()[-1]) for output in outputs]


def test_two_processes_incrementing_one_item_lose_no_update(moto_services: Services, tmp_path: Path) -> None:
    models = moto_services.models(COUNTER)
    for attempt in range(4):  # a round where the workers never collided proves nothing: run another
        name = f"hits-{attempt}"
        models.Counter(name=name, count=0).save()
        results = race(WORKER, moto_services.roots[-1], tmp_path, INCREMENTS, name)

        conflicts = sum(result["conflicts"] for result in results)
        counter = models.Counter.load(name, consistent=True)
        assert counter.count == 2 * INCREMENTS
        assert counter.version == 1 + 2 * INCREMENTS  # one version per successful save, none lost
        if conflicts > 0:
            return
    pytest.fail("in 4 rounds the two workers never collided: the test did not exercise the lock")


def test_two_processes_adding_to_one_counter_lose_no_increment(services: Services, tmp_path: Path) -> None:
    models = services.models(COUNTER)
    # On a loaded machine one worker can finish before the other starts: such a round proves nothing about the
    # race, so it is run again on a fresh counter (each round must still lose nothing).
    for attempt in range(4):
        name = f"hits-{attempt}"
        models.Counter(name=name, count=0).save()
        results = race(ADDER, services.roots[-1], tmp_path, ADDS, name)

        counter = models.Counter.load(name, consistent=True)
        assert counter.count == 2 * ADDS
        assert counter.version == 1 + 2 * ADDS  # every update counted a version
        seen = [count for result in results for count in result["seen"]]
        # Each add returned the counter as it left it: every value from 1 to 2N exactly once, whatever the interleaving.
        assert sorted(seen) == list(range(1, 2 * ADDS + 1))
        first, second = (result["seen"] for result in results)
        if max(first) > min(second) and max(second) > min(first):
            return
    pytest.fail("in 4 rounds the two workers never overlapped: the test did not race")


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
