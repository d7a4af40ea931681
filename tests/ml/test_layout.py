"""ml/ imports only downwards: no circles, no package reaching up a layer, nothing of the product.

Every module under ml/ is read with ``ast`` (imports at module level and inside
functions alike; none of it is imported). A module may import from its own package or
from a package on a lower layer of :data:`LAYERS`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ML = Path(__file__).resolve().parents[2] / "ml"

# Bottom to top. A top-level module (ml/labels.py) or package (ml/io/) is named by its stem;
# "__init__" is ml/__init__.py, which resolves ml.Analyzer.
LAYERS = (
    ("labels", "errors", "timing"),
    ("io",),
    ("model",),
    ("data", "guard", "explain", "study"),
    ("analysis",),
    ("evaluation",),
    ("training",),
    ("analyze", "train", "evaluate", "evaluate_studies", "recalibrate", "weight_pack", "__init__"),   # the commands
)
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}
FORBIDDEN = ("django", "scans", "workers", "brainai_site", "llm", "research")


def module_name(path: Path, root: Path = ML) -> str:
    """ml/io/read.py -> "ml.io.read"; ml/io/__init__.py -> "ml.io"."""
    parts = ("ml",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, modules: set[str], root: Path = ML) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file, ``from a import b`` resolved to the
    module ``a.b`` when ml/ has one."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in modules else base))
    return found


def part_of(module: str) -> str:
    """The LAYERS entry a module of ml/ belongs to: "ml.io.read" -> "io", "ml" -> "__init__"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph(root: Path = ML) -> dict[str, dict[str, int]]:
    """module -> {imported ml module: line} for every .py file under root."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        edges = {}
        for line, target in imported_names(path, set(files), root):
            if target == "ml" or target.startswith("ml."):
                # "from ml.io.frame import Frame" reaches ml.io.frame; a name that is not a
                # module (ml.Analyzer) is its package's attribute.
                while target not in files and "." in target:
                    target = target.rpartition(".")[0]
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every strongly connected set of two or more modules, and modules that import themselves."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, {}):
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    """"module:line imports target" for every import of a package on a higher layer."""
    bad = []
    for module, edges in sorted(graph.items()):
        for target, line in edges.items():
            here, there = part_of(module), part_of(target)
            if here != there and LAYER[there] > LAYER[here]:
                bad.append(f"{module}:{line} imports {target} (layer {LAYER[there]} above {LAYER[here]})")
    return bad


def product_imports(root: Path = ML) -> list[str]:
    """"file:line imports name" for every import of the web product or research code."""
    files = sorted(root.rglob("*.py"))
    names = {module_name(p, root) for p in files}
    return [f"{p.relative_to(root.parent)}:{line} imports {name}"
            for p in files for line, name in imported_names(p, names, root)
            if name.split(".")[0] in FORBIDDEN]


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_part_of_ml_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in ML.iterdir()
             if (p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts - set(LAYER) == set()


def test_no_module_of_ml_is_on_an_import_circle(graph):
    assert circles(graph) == []


def test_no_module_imports_from_a_higher_layer(graph):
    assert upward_imports(graph) == []


def test_ml_never_imports_django_the_product_llm_or_research():
    assert product_imports() == []


def _tree(tmp_path, files: dict[str, str]) -> Path:
    root = tmp_path / "ml"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for folder in {p.parent for p in root.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return root


def test_the_checks_catch_a_circle_an_upward_import_and_a_product_import(tmp_path):
    root = _tree(tmp_path, {
        "io/read.py": "def f():\n    from ml.analysis.analyzer import Analyzer\n",
        "analysis/analyzer.py": "from ml.io import read\n",
        "model/registry.py": "import django\nfrom workers import tasks\n",
    })
    graph = import_graph(root)
    assert circles(graph) == [["ml.analysis.analyzer", "ml.io.read"]]
    assert upward_imports(graph) == ["ml.io.read:2 imports ml.analysis.analyzer (layer 4 above 1)"]
    assert product_imports(root) == ["ml/model/registry.py:1 imports django",
                                     "ml/model/registry.py:2 imports workers"]
