"""The package's layers point down: the library never imports the command layer, and no
softreg module imports itself back through others (imports inside functions and under
TYPE_CHECKING count: they are the same dependency, only later)."""

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "softreg"

# the command layer: the only modules that may import the command layer
COMMAND_LAYER = ("softreg.commands", "softreg.cli", "softreg.console", "softreg.__main__")


def module_names(root):
    """``{dotted name: path}`` of every module of the package at ``root`` (a package is its ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _owner(name, modules):
    """The module ``name`` lives in: itself, or its longest prefix that is a module (an attribute's module)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) if parts else None


def _imported(node, module, is_package, modules):
    """The package modules one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [_owner(alias.name, modules) for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    return [_owner(f"{base}.{alias.name}" if base else alias.name, modules) for alias in node.names]


def import_graph(root):
    """``{module: set of modules it imports}`` within the package at ``root``, every import in the file counted."""
    modules = module_names(root)
    graph = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                is_package = path.name == "__init__.py"
                edges.update(name for name in _imported(node, module, is_package, modules) if name)
        edges.discard(module)
        graph[module] = edges
    return graph


def _in_layer(module, layer):
    return any(module == name or module.startswith(name + ".") for name in layer)


def upward_edges(graph, package="softreg"):
    """``(importer, imported)`` pairs where a library module imports the command layer."""
    layer = tuple(name.replace("softreg", package, 1) for name in COMMAND_LAYER)
    return sorted(
        (module, target)
        for module, targets in graph.items()
        if not _in_layer(module, layer)
        for target in targets
        if _in_layer(target, layer)
    )


def cycles(graph):
    """One cycle (a list of modules, the first repeated last) per strongly connected component of ``graph``."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(_cycle_through(min(component), component, graph))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _cycle_through(start, component, graph):
    """A shortest path ``start -> ... -> start`` inside one strongly connected component."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start}: not on a cycle of {sorted(component)}")


def test_library_never_imports_the_command_layer():
    """No module outside commands/, cli/, console and __main__ imports them (not even lazily)."""
    edges = upward_edges(import_graph(PACKAGE_ROOT))
    assert edges == [], "library modules importing the command layer: " + "; ".join(
        f"{importer} imports {imported}" for importer, imported in edges
    )


def test_no_import_cycle_between_softreg_modules():
    """The import graph of softreg, function-level and TYPE_CHECKING imports included, has no cycle."""
    found = cycles(import_graph(PACKAGE_ROOT))
    assert found == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_every_softreg_module_is_in_the_graph():
    """The graph covers the package: its modules, the subpackages and the estimator among them."""
    graph = import_graph(PACKAGE_ROOT)
    assert {"softreg", "softreg.rundir", "softreg.run.train", "softreg.estimator.classifier"} <= set(graph)
    assert "softreg.rundir" in graph["softreg.run.train"]


def test_run_directory_file_names_are_spelled_in_rundir_only():
    """No module outside softreg/rundir/ has a run directory's file name as a string literal: they use its names."""
    from softreg import rundir

    names = set(rundir.RUN_FILES) | {rundir.RUN_MARKER}
    spelled = sorted(
        f"{path.relative_to(PACKAGE_ROOT.parent)}:{node.lineno}: {node.value!r}"
        for path in PACKAGE_ROOT.rglob("*.py")
        if PACKAGE_ROOT / "rundir" not in path.parents
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    )
    assert spelled == [], "run directory file names spelled outside rundir/: " + "; ".join(spelled)


def _package(tmp_path, files):
    root = tmp_path / "softreg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_an_upward_import_inside_a_function_is_named(tmp_path):
    """A library module importing a command inside a function is reported as that edge."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "model.py": "def load():\n    from softreg.commands import train\n",
        "commands/__init__.py": "",
        "commands/train.py": "from softreg import model\n",
    })
    assert upward_edges(import_graph(root)) == [("softreg.model", "softreg.commands.train")]


def test_a_cycle_under_type_checking_is_named(tmp_path):
    """A cycle closed by a TYPE_CHECKING import is reported with its modules in order."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from softreg.b import thing\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from softreg import a\nthing = 1\n",
        "c.py": "from . import a\n",
    })
    assert cycles(import_graph(root)) == [["softreg.a", "softreg.b", "softreg.a"]]


def test_relative_imports_resolve_to_their_modules(tmp_path):
    """``from . import x`` in a package's ``__init__`` and ``from .. import y`` in a submodule name those modules."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "y.py": "",
        "pack/__init__.py": "from . import x\n",
        "pack/x.py": "from .. import y\nfrom ..y import name\n",
    })
    graph = import_graph(root)
    assert graph["softreg.pack"] == {"softreg.pack.x"}
    assert graph["softreg.pack.x"] == {"softreg.y"}
