"""The stack's process ends once it has stopped, whatever thread would keep it alive."""

from __future__ import annotations

import subprocess
import sys

from local.template import REPO_ROOT

# A process that stopped but has a non-daemon thread stuck forever, as a thread blocked
# on a socket nobody closes would be.
STUCK_AT_EXIT = """
import threading
from local.stack import _exit_within

def stuck_on_a_socket():
    threading.Event().wait()

threading.Thread(target=stuck_on_a_socket, name="stuck").start()
_exit_within(0.2)
"""


def test_a_thread_stuck_at_exit_is_reported_and_the_process_still_ends() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", STUCK_AT_EXIT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0
    assert "local stack: stopped, but still exiting after 0 s; its threads:" in finished.stderr
    assert "in stuck_on_a_socket" in finished.stderr
