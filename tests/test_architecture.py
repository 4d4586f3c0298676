"""The package's shape holds: import layers (``lint-imports`` with the contracts in pyproject.toml), no import
cycle anywhere in ``bpstream``, no module reaching into another package's ``_private`` modules, and filters and
models doing no IO of their own (environment, files, clock, network)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bpstream.filters", "bpstream.models", "bpstream.stream")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _package_of(graph, module: str) -> str:
    """A package is itself; a module belongs to the package that holds it."""
    return module if graph.find_children(module) or module in PACKAGES else module.rsplit(".", 1)[0]


def test_import_layers_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout and out.stdout.count("KEPT") >= 2


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    mods = sorted(graph.modules)
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in mods:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycle_anywhere(graph):
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    class G:  # a -> b -> c -> a, d -> a
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges.get(m, set())

    assert _cycles(G()) == [["a", "b", "c"]]


def test_no_module_imports_a_private_module_of_another_package(graph):
    bad = []
    for a in sorted(graph.modules):
        home = _package_of(graph, a)
        for b in graph.find_modules_directly_imported_by(a):
            if b.startswith(home + ".") or b == home:
                continue
            if any(part.startswith("_") for part in b.split(".")):
                lines = graph.get_import_details(importer=a, imported=b)
                bad.append(f"{a} -> {b} (l.{lines[0]['line_number'] if lines else '?'})")
    assert bad == [], "\n".join(bad)


def _own_package_imports(root: Path) -> list[str]:
    """``from . import x`` (or an absolute import of the package itself) inside a package's module: it runs the
    package's ``__init__``, which imports the module back (a cycle through the package)."""
    import ast

    bad = []
    for top, pkg in (("filters", "bpstream.filters"), ("models", "bpstream.models"), ("stream", "bpstream.stream")):
        for path in sorted((root / top).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            own = ".".join([pkg, *path.relative_to(root / top).parent.parts])
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and ((node.level == 1 and node.module is None)
                                                         or (node.level == 0 and node.module == own)):
                    bad.append(f"{path.relative_to(root)}:{node.lineno}")
    return bad


def test_no_module_imports_its_own_package(tmp_path):
    assert _own_package_imports(ROOT) == []
    (tmp_path / "stream" / "core").mkdir(parents=True)
    (tmp_path / "filters").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "stream" / "core" / "_x.py").write_text("from . import _y\n")
    assert _own_package_imports(tmp_path) == ["stream/core/_x.py:1"]


_IO_MODULES = {"os", "time", "datetime", "pathlib", "socket", "subprocess", "kafka", "aiokafka", "faust", "shutil"}
_IO_ATTRS = {"environ", "getenv", "read_bytes", "read_text", "write_bytes", "write_text", "mkdir", "monotonic",
             "perf_counter", "process_time", "utcnow", "today", "listdir", "scandir", "glob"}
# the one read of package data: the shipped weights, through importlib.resources (README, model card)
_ALLOWED = {("models/_population.py", "read_bytes")}


def _io_uses(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append((node.lineno, "open"))
        elif isinstance(node, ast.Attribute) and (node.attr in _IO_ATTRS or (
                node.attr in ("time", "now") and isinstance(node.value, ast.Name)
                and node.value.id in ("time", "datetime"))):
            found.append((node.lineno, node.attr))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(node.lineno, f"import {n}") for n in names if n.split(".")[0] in _IO_MODULES]
    return found


def test_filters_and_models_do_no_io_of_their_own():
    """Neither reads the environment, files, the clock or the network (the brief's layer rule): the AST of
    every module, lazy imports inside functions included."""
    found = []
    for folder in ("filters", "models"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += [(rel, line, what) for line, what in _io_uses(path.read_text())
                      if (rel, what) not in _ALLOWED]
    assert not found, found
    sample = "import os\nx = os.environ['A']\nt = time.monotonic()\nopen('f')\np.read_text()\n"  # the scan finds each
    assert sorted(_io_uses(sample)) == [(1, "import os"), (2, "environ"), (3, "monotonic"), (4, "open"), (5, "read_text")]
