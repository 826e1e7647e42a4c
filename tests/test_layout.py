"""The package's layout: no import cycle (scripts/import_graph.py), the persistence modules on their floors."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)


def test_no_import_cycle():
    graph = import_graph.import_graph()
    assert import_graph.cycles(graph) == []


def test_the_graph_sees_function_level_imports_and_skips_the_compiled_extension(tmp_path):
    # A toy package whose only cycle is closed by an import inside a function: the graph must see it.
    pkg = tmp_path / "rnnkit"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "rnn.py").write_text("from . import kernels\nfrom . import _native\n")
    (pkg / "kernels" / "__init__.py").write_text("def explain():\n    from ..rnn import RNN\n    return RNN\n")
    graph = import_graph.import_graph(pkg)
    assert "rnnkit.rnn" in graph["rnnkit.kernels"]
    assert import_graph.cycles(graph) == [["rnnkit.kernels", "rnnkit.rnn"]]
    real = import_graph.import_graph()
    assert all("_native" not in m for deps in real.values() for m in deps)


def test_the_core_reads_upwards():
    floor = import_graph.floors(import_graph.import_graph())
    order = ["rnnkit.ops", "rnnkit.cells", "rnnkit.kernels", "rnnkit.rnn", "rnnkit.layers", "rnnkit.v1"]
    assert [floor[m] for m in order] == sorted(floor[m] for m in order), {m: floor[m] for m in order}
    assert floor["rnnkit.cli"] == max(f for m, f in floor.items() if m != "rnnkit.__main__")


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
