"""llm/ is a client library on its own, and research/ is never imported by the product.

Read with ``ast``, imports inside functions included; nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ml", "llm", "scans", "workers", "brainai_site")


def imports_of(folder: Path, root: Path = ROOT) -> list[tuple[str, str]]:
    """("file:line", imported dotted name) for every absolute import under a folder."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found += [(f"{path.relative_to(root)}:{node.lineno}", name) for name in names]
    return found


def test_llm_imports_no_django_no_product_and_only_the_labels_of_ml():
    bad = [(where, name) for where, name in imports_of(ROOT / "llm")
           if name.split(".")[0] in ("django", "rest_framework", "scans", "workers", "brainai_site",
                                     "research", "keras", "tensorflow")
           or (name.split(".")[0] == "ml" and name != "ml.labels")]
    assert bad == []


def test_no_product_code_imports_research():
    bad = [(where, name) for package in PRODUCT for where, name in imports_of(ROOT / package)
           if name.split(".")[0] == "research"]
    assert bad == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("def f():\n    import research.sweep\n    from ml.io import read\n")
    assert imports_of(tmp_path / "pkg", tmp_path) == [("pkg/mod.py:2", "research.sweep"),
                                                      ("pkg/mod.py:3", "ml.io")]
