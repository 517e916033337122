"""The commands `make run` prints work exactly as printed, in a plain shell."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cli import export_lines, plain_shell_env, run_as_printed
from tests.support.local_stack import LocalStack


def test_the_printed_commands_work_as_printed(local_stack: LocalStack, tmp_path: Path) -> None:
    banner = local_stack.stdout()
    exports = export_lines(banner)
    tail = banner.split("Then try:", 1)[1].split("Ctrl-C", 1)[0]
    commands = [line.strip() for line in tail.splitlines() if line.strip()]
    assert len(exports) >= 6
    assert len(commands) >= 3
    for command in commands:
        completed = run_as_printed(command, plain_shell_env(tmp_path), exports=exports)
        assert completed.returncode == 0, (command, completed.stderr)
        assert completed.stdout.strip(), command
        assert '"error"' not in completed.stdout, (command, completed.stdout)


def test_the_exports_set_every_variable_the_banner_uses(local_stack: LocalStack) -> None:
    banner = local_stack.stdout()
    exported = {line.split("=", 1)[0].removeprefix("export ") for line in export_lines(banner)}
    used = set(re.findall(r"\$\{?([A-Z_]+)", banner))
    assert used <= exported, used - exported
    assert local_stack.salesforce_url.startswith("http://127.0.0.1:")
