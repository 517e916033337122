"""Figures a suite reports at the end of the run (requests fuzzed, faults injected, …).

A pytest plugin (`tests/conftest.py`): suites add lines with `report(config, line)`; the
terminal summary prints them.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

_LINES: Final = pytest.StashKey[list[str]]()


def report(config: pytest.Config, line: str) -> None:
    """Print `line` in this run's terminal summary."""
    config.stash.setdefault(_LINES, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(_LINES, []):
        terminalreporter.write_line(line)
