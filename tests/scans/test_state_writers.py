"""One writer per status field: the code is read with ``ast``, and a status written outside
scans.services.state's writers fails here, with the file and line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("scans", "workers", "brainai_site")
STATE_MODULE = "scans/services/state.py"
# The designated writer of each model's status, all in STATE_MODULE.
WRITERS = {"Scan": "move_scans", "Report": "move_report", "Study": "sync_study_status",
           "Delivery": "move_delivery",  # sending results back (scans.services.delivery)
           "Notification": "move_notification"}  # webhooks and e-mails (scans.services.notifications)
# Calls that write the keyword arguments they are given (``.filter(status=...)`` only reads).
WRITING_CALLS = {"update", "create", "get_or_create", "update_or_create"}
MODELS_WITH_STATUS = set(WRITERS)


def status_writes(source: str) -> list[tuple[int, str]]:
    """(line, enclosing function or "<module>") of every status write in ``source``."""
    writes: list[tuple[int, str]] = []

    def visit(node, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where = node.name
        if _writes_status(node):
            writes.append((node.lineno, where))
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(ast.parse(source), "<module>")
    return writes


def _writes_status(node) -> bool:
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(_is_status_attribute(t) for t in targets)
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    keywords = {k.arg: k.value for k in node.keywords}
    if name == "setattr" and len(node.args) >= 2:
        return isinstance(node.args[1], ast.Constant) and node.args[1].value == "status"
    if name in WRITING_CALLS or name in MODELS_WITH_STATUS:
        if "status" in keywords:
            return True
        defaults = [keywords.get("defaults"), keywords.get("create_defaults")]
        return any(isinstance(d, ast.Dict) and _has_status_key(d) for d in defaults)
    if name == "bulk_update":
        fields = keywords.get("fields") or (node.args[1] if len(node.args) > 1 else None)
        return isinstance(fields, (ast.List, ast.Tuple, ast.Set)) and any(
            isinstance(e, ast.Constant) and e.value == "status" for e in fields.elts)
    return False


def _is_status_attribute(target) -> bool:
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_is_status_attribute(t) for t in target.elts)
    return isinstance(target, ast.Attribute) and target.attr == "status"


def _has_status_key(d: ast.Dict) -> bool:
    return any(isinstance(k, ast.Constant) and k.value == "status" for k in d.keys)


def _sources():
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path.read_text()


def test_a_status_is_written_only_by_its_designated_writer():
    found = {(path, line, where) for path, source in _sources() for line, where in status_writes(source)}

    elsewhere = sorted(f"{path}:{line} in {where}" for path, line, where in found
                       if path != STATE_MODULE or where not in WRITERS.values())
    assert elsewhere == [], "status written outside scans.services.state: " + ", ".join(elsewhere)
    assert {where for path, _, where in found} == set(WRITERS.values())


@pytest.mark.parametrize("code", [
    "scan.status = 'failed'",
    "report.status, report.label = 'signed', ''",
    "Scan.objects.filter(pk=1).update(status='pending', error='')",
    "study.reports.create(version=2, status='amended')",
    "Report.objects.get_or_create(study=s, defaults={'status': 'failed'})",
    "Study.objects.update_or_create(pk=1, defaults={'status': 'signed'})",
    "Report(study=s, status='amended')",
    "setattr(scan, 'status', 'failed')",
    "Scan.objects.bulk_update(scans, ['status', 'error'])",
])
def test_the_reader_finds_each_way_of_writing_a_status(code):
    assert status_writes(f"def somewhere():\n    {code}\n") == [(2, "somewhere")]


@pytest.mark.parametrize("code", [
    "Scan.objects.filter(status='pending').exclude(status='failed').count()",
    "Report.objects.get_or_create(study=s, defaults={'version': 1})",
    "JsonResponse({'status': 'ok'}, status=503)",
    "x = scan.status",
])
def test_reads_are_not_writes(code):
    assert status_writes(f"def somewhere():\n    {code}\n") == []
