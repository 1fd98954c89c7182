"""The package's import graph, read from the source with :mod:`ast`: no module imports itself
through others (an import loop), and the pure packages stay below the layers that run them.

Every ``import`` and ``from ... import`` counts, at module level or inside a function (a
function-level import is still a loop: it only hides it until the function runs). ``from a.b
import c`` is an edge to ``a.b.c`` when that is a module of the package, else to ``a.b``.
Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bids_app"

#: The pure packages (STYLE.md, docs/architecture.md): arrays and tables in and out.
PURE = ("bids_app.parcels", "bids_app.fmri", "bids_app.meg", "bids_app.stats")
#: What the pure packages must not import, even inside a function.
FORBIDDEN_IN_PURE = ("nipype", "bids_app.config", "bids_app.cli", "bids_app.workflows",
                     "bids_app.interfaces", "bids_app.errors")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the import statements under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports_of(module: str, path: Path, modules: set[str] | dict) -> list[tuple[str, int]]:
    """The modules ``module`` imports (absolute names) with the line of each import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in modules else target, node.lineno))
    return out


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module of the package: line}}``."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for target, line in imports_of(name, path, modules):
            if target in modules and target != name:
                edges.setdefault(target, line)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One loop per strongly connected component of more than one module (Tarjan's
    algorithm), each as the list of modules along it, first module repeated at the end."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_loop_in(graph, set(c)) for c in components]


def _loop_in(graph: dict[str, dict[str, int]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return paths[node] + [start]
            if nxt in component and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                todo.append(nxt)
    raise AssertionError(f"no loop through {start}")  # a component always has one


def _describe(graph: dict[str, dict[str, int]], loop: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(loop, loop[1:])) + \
        f" -> {loop[-1]}"


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # function-level: run.py imports the participant level inside _run()
    assert "bids_app.cli.participant" in graph["bids_app.cli.run"]
    # relative: bids_app.fmri.block_estimates imports ``from .errors import ...``
    assert "bids_app.fmri.errors" in graph["bids_app.fmri.block_estimates"]
    # ``from package import submodule``
    assert find_cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == \
        [["a", "b", "c", "a"]]


def test_no_import_loops():
    graph = import_graph()
    loops = find_cycles(graph)
    assert not loops, "import loops:\n" + "\n".join(_describe(graph, loop) for loop in loops)


def test_pure_packages_import_no_runner_layer():
    """STYLE.md: the pure packages take arrays and return them; nipype, the configuration, the
    command line, the workflows, the interfaces and the exit codes are the layers above. Also
    through the modules of the package they import (``bids_app.blocks``, ...)."""
    modules = _modules()
    direct = {name: imports_of(name, path, modules) for name, path in modules.items()}
    graph = import_graph()
    found = set()
    for start in (name for name in modules if name.startswith(PURE)):
        paths = {start: [start]}
        todo = [start]
        while todo:  # every module of the package that importing ``start`` imports
            module = todo.pop()
            for target, line in direct[module]:
                if any(target == f or target.startswith(f + ".") for f in FORBIDDEN_IN_PURE):
                    via = " -> ".join(paths[module])
                    found.add(f"{via} ({modules[module].relative_to(PACKAGE.parent)}:{line}) "
                              f"imports {target}")
            for target in graph[module]:
                if target not in paths:
                    paths[target] = paths[module] + [target]
                    todo.append(target)
    assert not found, "\n".join(sorted(found))


def test_every_error_of_the_pure_packages_means_bad_data():
    """Every exception class the pure packages define derives from ``InputDataError``, the one
    class :mod:`bids_app.errors` maps to exit code 65: a new error class cannot be forgotten in
    the mapping (``ParcellationError`` was, and left with exit 1 and a crash file)."""
    import importlib
    import inspect

    from bids_app.errors import BAD_DATA_ERRORS, EXIT_BAD_DATA, exit_code_of

    modules = _modules()
    classes = []
    for name in modules:
        if name.startswith(PURE) or name == "bids_app.blocks":
            module = importlib.import_module(name)
            classes += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                        if issubclass(cls, Exception) and cls.__module__ == name]
    assert len(classes) >= 10, classes  # the graph found the packages' error modules
    outside = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, BAD_DATA_ERRORS)]
    assert not outside, f"error classes outside the bad-data mapping: {outside}"
    assert {exit_code_of(c) for c in classes} == {EXIT_BAD_DATA}


def test_the_command_line_starts_without_the_science_libraries():
    """The error mapping is a class imported from a module without imports
    (:mod:`bids_app.input_errors`), not the pure packages themselves, and the configuration
    imports only the pure packages' options modules (their packages load their code lazily):
    ``--help`` and the early checks stay quick (MNE alone takes seconds to import)."""
    import subprocess
    import sys

    heavy = ("mne", "nipype", "numpy", "pandas", "scipy", "bids_app.meg.epochs",
             "bids_app.meg.dics", "bids_app.parcels.parcellation", "bids_app.stats.group")
    code = ("import sys, bids_app.cli.run, bids_app.errors; "
            f"print(sorted(m for m in {heavy} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"
