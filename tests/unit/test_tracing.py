"""Every traced handler and method keeps answers and exceptions out of X-Ray.

The integration test (`test_traces.py`) scans real trace documents of the functions it
drives; this one holds every function and every traced method, present and future, to
`capture_response=False, capture_error=False`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "functions").glob("*/handler.py")), *(ROOT / "layers").rglob("*.py")]


def _tracer_decorators(path: Path) -> Iterator[tuple[str, ast.expr]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr in (
                    "capture_lambda_handler",
                    "capture_method",
                ):
                    yield f"{path.relative_to(ROOT)}:{node.name}", decorator


def test_every_traced_function_captures_neither_answers_nor_errors() -> None:
    traced = [found for path in SOURCES for found in _tracer_decorators(path)]
    assert len(traced) >= 5  # one per function at least
    for where, decorator in traced:
        assert isinstance(decorator, ast.Call), f"{where}: traced with the defaults"
        settings = {k.arg: k.value for k in decorator.keywords}
        for setting in ("capture_response", "capture_error"):
            value = settings.get(setting)
            assert isinstance(value, ast.Constant), (where, setting)
            assert value.value is False, (where, setting)
