"""Writers for `--format json|env|github`, and redaction of anything printed on error."""

import json
import re
import shlex
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("json", "env", "github")
MASK = "**********"
_MIN_SECRET_LENGTH = 6


@dataclass(frozen=True)
class ExportedField:
    """A response field exported by the env and github formats."""

    key: str  # camelCase field of the API response
    env_name: str  # shell / $GITHUB_ENV variable
    secret: bool = False

    @property
    def output_name(self) -> str:
        """Name of the GitHub step output: `SF_ORG_ID` -> `org_id`."""
        return self.env_name.removeprefix("SF_").lower()


# Order is the order printed. Secrets are masked in GitHub logs before anything else.
EXPORTED_FIELDS = (
    ExportedField("accessToken", "SF_ACCESS_TOKEN", secret=True),
    ExportedField("instanceUrl", "SF_INSTANCE_URL"),
    ExportedField("username", "SF_USERNAME"),
    ExportedField("orgId", "SF_ORG_ID"),
    ExportedField("loginUrl", "SF_LOGIN_URL"),
    ExportedField("expiresAt", "SF_EXPIRES_AT"),
    ExportedField("expirationDate", "SF_EXPIRATION_DATE"),  # a pool org's last day
    ExportedField("sfdxAuthUrl", "SF_SFDX_AUTH_URL", secret=True),
    ExportedField("password", "SF_PASSWORD", secret=True),
)

# Shapes of secrets that must never reach an error line, whatever a server or a child
# process puts in its message: API tokens (sfb_<id>_<secret>), Salesforce access tokens
# (<org id>!<session>) and SFDX auth URLs. The documentation of a format is no secret:
# `force://<clientId>:...` and `force://...` stay readable.
_SECRET_PATTERNS = (
    re.compile(r"sfb_[A-Za-z0-9_\-]+"),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"),
    re.compile(r"force://(?!<|\.\.\.)\S+"),
)


class OutputError(Exception):
    """The chosen format cannot represent this response."""


def secret_values(record: Mapping[str, Any]) -> list[str]:
    """The secret values of a response (to mask or to redact)."""
    return [value for field, value in _exported(record) if field.secret]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and anything shaped like a secret with a mask."""
    for secret in secrets:
        # A value too short to be a real secret ("x" in a test) would mangle the text.
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def write_json(body: Mapping[str, Any], stdout: TextIO) -> None:
    """The response body, pretty-printed."""
    stdout.write(json.dumps(body, indent=2) + "\n")


def write_env(record: Mapping[str, Any], stdout: TextIO) -> None:
    """`NAME=value` lines, shell-quoted: `eval "$(sfbroker --format env token ...)"`."""
    for field, value in _exported_or_fail(record, "env"):
        stdout.write(f"{field.env_name}={shlex.quote(value)}\n")


def write_github(
    record: Mapping[str, Any], stdout: TextIO, github_env: Path, github_output: Path
) -> None:
    """Mask secrets in the job log, then export every field to $GITHUB_ENV and $GITHUB_OUTPUT.

    The masks are printed (and flushed) before a secret is written anywhere, so the runner
    knows them before any later step could echo them. Secrets reach stdout only inside the
    `::add-mask::` command.
    """
    fields = _exported_or_fail(record, "github")
    for field, value in fields:
        if field.secret:
            stdout.write(f"::add-mask::{_escape_command_data(value)}\n")
    stdout.flush()
    with github_env.open("a", encoding="utf-8") as env_file:
        for field, value in fields:
            env_file.write(_file_command(field.env_name, value))
    with github_output.open("a", encoding="utf-8") as output_file:
        for field, value in fields:
            output_file.write(_file_command(field.output_name, value))
    stdout.write("sfbroker: exported to $GITHUB_ENV and step outputs:\n")
    for field, value in fields:
        shown = "(masked)" if field.secret else value
        stdout.write(f"  {field.env_name} / {field.output_name} = {shown}\n")


def _exported(record: Mapping[str, Any]) -> list[tuple[ExportedField, str]]:
    found = []
    for field in EXPORTED_FIELDS:
        value = record.get(field.key)
        if value is not None and value != "":
            found.append((field, value if isinstance(value, str) else json.dumps(value)))
    return found


def _exported_or_fail(record: Mapping[str, Any], fmt: str) -> list[tuple[ExportedField, str]]:
    fields = _exported(record)
    if not fields:
        raise OutputError(f"--format {fmt}: the response has no credential or org fields")
    return fields


def _escape_command_data(value: str) -> str:
    # Workflow-command data escaping (@actions/core escapeData): the runner unescapes it.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _file_command(name: str, value: str) -> str:
    # The heredoc form survives values with newlines; the random delimiter cannot be forged
    # by a value (@actions/core uses the same `ghadelimiter_<uuid>` shape).
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
