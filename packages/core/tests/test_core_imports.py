"""The core's modules import one another without a loop (lazy imports count; ``if TYPE_CHECKING:`` ones do not)."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_core_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph(SRC)
    assert "macaron.parameters" in graph
    assert cycles(graph) == []


def test_the_client_stands_apart_from_the_server() -> None:
    graph = import_graph(SRC)
    assert not graph["macaron.client"] & {"macaron.app", "macaron.endpoint"}
    assert "macaron.preparing" in graph["macaron.client"] and "macaron.preparing" in graph["macaron.app"]
