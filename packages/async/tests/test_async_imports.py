"""macaron-async's modules import one another without a loop (lazy imports count; ``if TYPE_CHECKING:`` ones do not)."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_async_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph(SRC)
    assert "macaron_async.registry" in graph and "macaron_async.launching" in graph
    assert cycles(graph) == []


def test_the_layers_point_one_way() -> None:
    graph = import_graph(SRC)
    assert "macaron_async.tasks" not in graph["macaron_async.runtime"]
    assert "macaron_async.tasks" not in graph["macaron_async.schedule"]
    assert "macaron_async.worker" not in graph["macaron_async.beat"]
