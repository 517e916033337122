"""Every traced handler and method keeps answers and exceptions out of X-Ray.

The integration test (`test_traces.py`) scans real trace documents of the functions it
drives; this one holds every function and every use of Powertools' capture decorators,
present and future, to `capture_response=False, capture_error=False`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/handler.py"))
SOURCES = [*HANDLERS, *(ROOT / "layers").rglob("*.py")]
CAPTURES = ("capture_lambda_handler", "capture_method")


def _captures(path: Path) -> Iterator[tuple[str, ast.expr]]:
    """Each use of a capture decorator: called (`tracer.capture_…(…)`) or bare (`@tracer.…`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    called = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in CAPTURES:
            called.add(id(node.func))
            yield f"{path.relative_to(ROOT)}:{node.lineno}", node
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in CAPTURES and id(node) not in called:
            yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def test_every_capture_keeps_answers_and_errors_out() -> None:
    uses = [found for path in SOURCES for found in _captures(path)]
    assert uses, "no tracing found at all"
    for where, use in uses:
        assert isinstance(use, ast.Call), f"{where}: traced with the defaults"
        settings = {k.arg: k.value for k in use.keywords}
        for setting in ("capture_response", "capture_error"):
            value = settings.get(setting)
            assert isinstance(value, ast.Constant), (where, setting)
            assert value.value is False, (where, setting)


def test_every_function_is_traced_through_the_one_safe_wrapper() -> None:
    assert len(HANDLERS) >= 5
    for path in HANDLERS:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        (entry,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        names = {d.id for d in entry.decorator_list if isinstance(d, ast.Name)}
        assert "traced" in names, path
