"""The commands `make run` prints work exactly as printed, in a plain shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.local_stack import LocalStack


def test_the_printed_commands_work_as_printed(local_stack: LocalStack, tmp_path: Path) -> None:
    banner = local_stack.stdout()
    exports = [line for line in banner.splitlines() if line.startswith("export ")]
    tail = banner.split("Then try:", 1)[1].split("Ctrl-C", 1)[0]
    commands = [line.strip() for line in tail.splitlines() if line.strip()]
    assert len(exports) >= 5
    assert len(commands) >= 3
    for command in commands:
        script = "\n".join([*exports, "set -o pipefail", command])
        completed = subprocess.run(
            ["bash", "-c", script],
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(tmp_path),
                "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, (command, completed.stderr)
        assert completed.stdout.strip(), command
        assert '"error"' not in completed.stdout, (command, completed.stdout)
