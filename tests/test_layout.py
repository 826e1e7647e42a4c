"""The package's layout: no import cycle (scripts/import_graph.py), the persistence modules on their floors."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)

# rnn <-> kernels (kernels.select imports rnn inside a function) is being removed in parallel; the lead
# tightens this to no cycle at all once that lands.
KNOWN = [["rnnkit.kernels", "rnnkit.rnn"]]


def test_no_import_cycle():
    graph = import_graph.import_graph()
    assert import_graph.cycles(graph) in ([], KNOWN), import_graph.cycles(graph)


def test_the_graph_sees_function_level_imports_and_skips_the_compiled_extension():
    graph = import_graph.import_graph()
    assert "rnnkit.checkpoint" in graph["rnnkit.cli"]  # imported inside cli's functions
    assert "rnnkit.rnn" in graph["rnnkit.kernels"]  # ditto, inside kernels.select
    assert all("_native" not in m for deps in graph.values() for m in deps)


def test_persistence_floors():
    graph = import_graph.import_graph()
    assert graph["rnnkit.files"] == set()  # the atomic writes stand on nothing of rnnkit
    for plain in ("rnnkit.losses", "rnnkit.optimizers", "rnnkit.callbacks"):
        assert graph[plain] == set(), plain
    assert graph["rnnkit.plots"] == {"rnnkit.files"}
    assert "rnnkit.serialization" not in graph["rnnkit.callbacks"] | graph["rnnkit.training"]
    floor = import_graph.floors(graph)
    assert floor["rnnkit.files"] == 0
    assert floor["rnnkit.training"] < floor["rnnkit.model"] < floor["rnnkit.serialization"] < floor["rnnkit.checkpoint"]
    assert "rnnkit.io" not in graph


def test_the_report_runs(capsys):
    status = import_graph.main([])
    out = capsys.readouterr().out
    assert "Floors" in out and "longest functions" in out
    assert status == (1 if import_graph.cycles(import_graph.import_graph()) else 0)
