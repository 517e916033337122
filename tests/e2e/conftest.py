"""The local stack as a subprocess for the session, and the `sfbroker` CLI against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_stack import LocalStack, start_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack (moto) for the e2e session."""
    stack = start_stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.stop()
