"""rnnkit's import graph: floors (topological levels), cycles, module sizes, the longest functions.

    python scripts/import_graph.py            # prints the report; exit status 1 on an import cycle
    python scripts/import_graph.py --top 20   # the 20 longest functions

Every ``import`` of an rnnkit module counts, at module level and inside
functions alike: a function-level import that only dodges a cycle is still
a cycle in the design. Imports of other packages (torch, numpy, and the
optional onnx, h5py, matplotlib, sklearn, tqdm) are not edges, and neither
is the compiled extension ``rnnkit._native``, which has no Python source.
Imports under ``if TYPE_CHECKING:`` never run and are skipped.

Floor 0 holds the modules that import no other rnnkit module; a module's
floor is one above the highest floor it imports, so reading the floors
upwards reads the package in dependency order.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "rnnkit"
ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted module name: source file}`` for every ``.py`` file of the package (``__init__`` names the package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _compiled_modules(root: Path) -> set[str]:
    """Dotted names of the compiled extensions (``_native.cpython-311-x86_64-linux-gnu.so``): no source, no edges."""
    out = set()
    for path in [*root.rglob("*.so"), *root.rglob("*.pyd")]:
        parts = (root.name, *path.relative_to(root).parent.parts, path.name.split(".")[0])
        out.add(".".join(parts))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom in ``tree``, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = node.orelse if isinstance(node, ast.If) and _is_type_checking(node.test) else ast.iter_child_nodes(node)
        stack.extend(children)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The rnnkit module that importing ``name`` runs: the longest known prefix of the dotted name."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path], compiled: set[str]) -> set[str]:
    """The rnnkit modules that ``module`` imports anywhere in its source (``compiled`` extensions left out)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:  # relative: "." is this module's package (the package itself for an __init__)
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from pkg import name" imports the submodule pkg.name when there is one, else takes a name from pkg.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                     if f"{base}.{alias.name}" not in compiled]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: the rnnkit modules it imports}`` for the whole package."""
    modules = module_files(root)
    compiled = _compiled_modules(root)
    return {m: imports_of(m, p, modules, compiled) for m, p in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted; a component of several modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop."""
    return [c for c in strongly_connected(graph) if len(c) > 1]


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 when it imports no rnnkit module, else one above the highest it imports.

    The modules of a cycle share one floor (their component is treated as one module).
    """
    component_of = {m: i for i, c in enumerate(strongly_connected(graph)) for m in c}
    floor: dict[int, int] = {}
    # Tarjan emits a component only after every component it imports, so one pass in that order suffices.
    for i, c in enumerate(strongly_connected(graph)):
        deps = {component_of[d] for m in c for d in graph[m]} - {i}
        floor[i] = 1 + max((floor[d] for d in deps), default=-1)
    return {m: floor[component_of[m]] for m in graph}


def module_sizes(root: Path = ROOT) -> dict[str, int]:
    """``{module: number of lines}``."""
    return {m: len(p.read_text().splitlines()) for m, p in module_files(root).items()}


def longest_functions(root: Path = ROOT, top: int = 10) -> list[tuple[int, int, str]]:
    """The ``top`` longest functions and methods: ``(lines, parameters, "module.Class.function")``."""
    found = []
    for module, path in module_files(root).items():
        def walk(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = child.args
                    params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
                    n_params = sum(p.arg not in ("self", "cls") for p in params)
                    found.append((child.end_lineno - child.lineno + 1, n_params, f"{prefix}{child.name}"))
                    walk(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")
                else:
                    walk(child, prefix)

        walk(ast.parse(path.read_text(), str(path)), f"{module}.")
    return sorted(found, key=lambda t: (-t[0], t[2]))[:top]


def _short(module: str) -> str:
    return module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the longest functions to list")
    args = parser.parse_args(argv)
    graph = import_graph()
    level = floors(graph)
    sizes = module_sizes()
    print("Floors (each module imports only modules on lower floors):")
    for f in range(max(level.values()) + 1):
        names = sorted(m for m in graph if level[m] == f)
        print(f"  {f:2d}: " + ", ".join(f"{_short(m)} ({sizes[m]})" for m in names))
    print("\nModule sizes (lines):")
    for m, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {n:5d}  {_short(m)}")
    print(f"\nThe {args.top} longest functions (lines, parameters without self):")
    for n, params, name in longest_functions(top=args.top):
        print(f"  {n:5d}  {params:2d}  {_short(name)}")
    found = cycles(graph)
    if found:
        print("\nIMPORT CYCLES (modules that import each other, at module level or inside functions):", file=sys.stderr)
        for c in found:
            edges = [f"{_short(a)} -> {_short(b)}" for a in c for b in sorted(graph[a]) if b in c]
            print(f"  {' <-> '.join(_short(m) for m in c)}: {', '.join(edges)}", file=sys.stderr)
        return 1
    print("\nNo import cycle.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
