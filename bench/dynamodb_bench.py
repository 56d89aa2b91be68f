"""Save, load and update through macaron-dynamodb against raw pynamodb, in one run, against one moto server over HTTP.

The same item both ways: a string key, a name, a float price, an integer stock, a
list of tags, a nested map of floats, a boolean and a date-time.
  (a) raw pynamodb: a hand-written ``pynamodb.models.Model`` with typed attributes;
  (b) macaron: the model class of a spec definition marked ``x-persist``, validated on save.
The update adds 1 to the stock of an existing item and returns the item (ALL_NEW):
``Raw(key).update(actions=[Raw.stock.add(1)], condition=Raw.id.exists())`` against
``Item.update(key, add={"stock": 1})``, which checks the value against the spec and
sends the same existence condition (macaron refuses to create a half item by default).
The two sides alternate call by call; the figure is the median over rounds of
the mean time per call, and the ratio macaron / pynamodb (target: at most 1.15x). A second
table isolates the in-process part (encode on save, decode on load, build the update, no network).

Run: python bench/dynamodb_bench.py [--quick] [--check]   (--check: exit 1 when a ratio misses the target)
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

TARGET = 1.15
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
)

from pynamodb.attributes import (  # noqa: E402  (after the environment: botocore reads it on import)
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model as PynamoModel  # noqa: E402

from macaron_dynamodb.updates import UpdatePlan  # noqa: E402

SPEC = """
swagger: '2.0'
info: {title: bench, version: '1'}
paths: {}
definitions:
  Item:
    type: object
    x-persist: {table: bench-macaron, hash_key: id}
    required: [id, name, price]
    properties:
      id: {type: string}
      name: {type: string}
      price: {type: number}
      stock: {type: integer}
      tags: {type: array, items: {type: string}}
      dimensions:
        type: object
        properties:
          width: {type: number}
          height: {type: number}
      active: {type: boolean}
      created_at: {type: string, format: date-time}
"""
CREATED = dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=dt.timezone.utc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/moto-api/", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("moto server did not start within 30 s")


def raw_model(url: str) -> type[PynamoModel]:
    class Dimensions(MapAttribute[str, float]):
        width = NumberAttribute()
        height = NumberAttribute()

    class RawItem(PynamoModel):
        class Meta:
            table_name = "bench-raw"
            host = url
            region = "us-east-1"
            connect_timeout_seconds = 5
            read_timeout_seconds = 10

        id = UnicodeAttribute(hash_key=True)
        name = UnicodeAttribute()
        price = NumberAttribute()
        stock = NumberAttribute(null=True)
        tags = ListAttribute(of=UnicodeAttribute, null=True)
        dimensions = Dimensions(null=True)  # type: ignore[no-untyped-call]
        active = BooleanAttribute(null=True)
        created_at = UTCDateTimeAttribute(null=True)

    RawItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    return RawItem


def macaron_model(url: str, folder: Path) -> Any:
    from macaron import create_app, service_of
    from macaron.plugins import get_plugin_manager
    from macaron_dynamodb import create_tables, plugin, tables_of

    (folder / "apis").mkdir()
    (folder / "apis" / "bench.yaml").write_text(textwrap.dedent(SPEC))
    (folder / "macaron.yaml").write_text(f"name: bench\ndynamodb: {{endpoint_url: '{url}', region: us-east-1}}\n")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register_plugin(plugin, name="dynamodb")
    models = service_of(create_app(folder, plugin_manager=pm)).models["bench"]
    create_tables(tables_of(models), wait=True)
    return models.Item


def measure(cases: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]], rounds: int, count: int) -> dict[str, tuple[float, float]]:
    """Median over rounds of the mean time per call; the two sides alternate call by call, so load drift hits both alike."""
    clock = time.perf_counter
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cases}
    for _ in range(rounds):
        for name, (raw, ours) in cases.items():
            raw_total = our_total = 0.0
            for n in range(count):
                if n % 2:
                    start = clock()
                    raw(n)
                    middle = clock()
                    ours(n)
                    end = clock()
                    raw_total += middle - start
                    our_total += end - middle
                else:
                    start = clock()
                    ours(n)
                    middle = clock()
                    raw(n)
                    end = clock()
                    our_total += middle - start
                    raw_total += end - middle
            results[name][0].append(raw_total / count)
            results[name][1].append(our_total / count)
    return {name: (statistics.median(raw), statistics.median(ours)) for name, (raw, ours) in results.items()}


def report(title: str, figures: dict[str, tuple[float, float]], unit: str, scale: float, target: float | None) -> bool:
    print(f"\n{title}")
    print(f"  {'case':<8} {'pynamodb':>12} {'macaron':>12} {'ratio':>7}")
    ok = True
    for name, (raw, ours) in figures.items():
        ratio = ours / raw
        mark = ""
        if target is not None:
            mark = "  ok" if ratio <= target else f"  ABOVE {target}x"
            ok = ok and ratio <= target
        print(f"  {name:<8} {raw * scale:>10.1f}{unit} {ours * scale:>10.1f}{unit} {ratio:>6.2f}x{mark}")
    return ok


def main() -> int:
    quick = "--quick" in sys.argv
    rounds, count = (3, 50) if quick else (5, 120)
    started = time.perf_counter()
    process, url = start_moto()
    try:
        with tempfile.TemporaryDirectory() as folder:
            Raw = raw_model(url)
            Item = macaron_model(url, Path(folder))

            def raw_save(n: int) -> None:
                Raw(
                    f"item-{n}", name="Lamp", price=12.5, stock=3, tags=["home", "light"],
                    dimensions={"width": 20.0, "height": 45.5}, active=True, created_at=CREATED,
                ).save()  # fmt: skip

            def our_save(n: int) -> None:
                Item(
                    id=f"item-{n}", name="Lamp", price=12.5, stock=3, tags=["home", "light"],
                    dimensions={"width": 20.0, "height": 45.5}, active=True, created_at=CREATED,
                ).save()  # fmt: skip

            raw_save(0)
            our_save(0)
            network = measure(
                {
                    "save": (raw_save, our_save),
                    "load": (lambda n: Raw.get(f"item-{n}"), lambda n: Item.load(f"item-{n}")),
                    "update": (
                        lambda n: Raw(f"item-{n}").update(actions=[Raw.stock.add(1)], condition=Raw.id.exists()),
                        lambda n: Item.update(f"item-{n}", add={"stock": 1}),
                    ),
                },
                rounds,
                count,
            )

            # The same work without the network: what each side does in process per call.
            raw_item = Raw.get("item-0")
            stored = Raw._get_connection().get_item("item-0")["Item"]
            our_item = Item.load("item-0")
            table = Item._table
            connection = Raw._get_connection().connection

            def raw_update_request(n: int) -> Any:
                return connection.get_operation_kwargs(
                    Raw.Meta.table_name, f"item-{n}", actions=[Raw.stock.add(1)], condition=Raw.id.exists(), return_values="ALL_NEW"
                )

            def our_update_request(n: int) -> Any:
                return UpdatePlan(table, Item, table.key(f"item-{n}"), None, {"stock": 1}, (), None, None, False).arguments

            local = measure(
                {
                    "encode": (lambda n: raw_item.serialize(), lambda n: table.item_for_save(our_item._data, None)),
                    "decode": (lambda n: Raw.from_raw_data(stored), lambda n: table.wrap(stored)),
                    "update": (raw_update_request, our_update_request),
                },
                rounds,
                count * 20,
            )
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"macaron-dynamodb vs raw pynamodb, against moto server over HTTP ({rounds} rounds x {count} calls, median per call)")
    ok = report("Per call, with the network (target <= 1.15x)", network, " ms", 1e3, TARGET)
    report("In process only: serialise for save, deserialise after load, build an update request", local, " us", 1e6, None)
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0 if ok or "--check" not in sys.argv else 1


if __name__ == "__main__":
    sys.exit(main())
