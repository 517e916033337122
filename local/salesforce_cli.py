"""The Salesforce CLI (`sf`, npm `@salesforce/cli`) installed under `local/node`, for tests.

`make` installs it (`npm install` in `local/node`). Run it through `isolated_env()`: a
throwaway HOME (sf keeps its auth files, config and caches under `~/.sf` and `~/.sfdx`),
no telemetry, no update checks, and the generic Unix keychain (a key file under HOME
instead of the desktop's secret service, which CI machines do not have).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
SF_BIN = NODE_DIR / "node_modules" / ".bin" / "sf"

# The environment of the caller that must not leak into sf: its own state and secrets.
_DROPPED_PREFIXES = ("SF_", "SFDX_", "SFBROKER_", "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS")


class SalesforceCliMissing(RuntimeError):
    """The `sf` binary is not installed under local/node."""


def sf_bin() -> Path:
    """The installed `sf` executable; `SalesforceCliMissing` (saying to run `make`) if absent."""
    if not os.access(SF_BIN, os.X_OK):
        raise SalesforceCliMissing(
            f"the Salesforce CLI is not installed ({SF_BIN} is missing): run `make` "
            "(or `make e2e`), which runs `npm install` in local/node"
        )
    return SF_BIN


def isolated_env(
    home: Path,
    *,
    ca_cert: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for `sf` that touches nothing outside `home`.

    It starts from `os.environ` minus sf's, Node's and sfbroker's own variables. `ca_cert`
    (e.g. the fake Salesforce's CA) is trusted through `NODE_EXTRA_CA_CERTS`; `extra`
    comes last (e.g. `SF_ACCESS_TOKEN`). The directory of `sf` leads PATH, so that a
    plain `sf` resolves to this one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        SF_DISABLE_TELEMETRY="true",
        # Both spellings: oclif's update hook reads only SF_DISABLE_AUTOUPDATE (sf copies
        # SF_AUTOUPDATE_DISABLE into it for installer builds, not npm ones); without it the
        # hook spawns a detached `sf update --autoupdate` that lingers for an hour.
        SF_AUTOUPDATE_DISABLE="true",
        SF_DISABLE_AUTOUPDATE="true",
        SF_USE_GENERIC_UNIX_KEYCHAIN="true",
        SF_SKIP_NEW_VERSION_CHECK="true",  # oclif's warn-if-update-available asks npm
        SF_HIDE_RELEASE_NOTES="true",
        SF_HIDE_RELEASE_NOTES_FOOTER="true",
        SF_DISABLE_DNS_CHECK="true",
        SF_LOG_LEVEL="warn",
        FORCE_COLOR="0",
        PATH=os.pathsep.join(p for p in (str(SF_BIN.parent), env.get("PATH", "")) if p),
    )
    if ca_cert is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_cert)
    if extra:
        env.update(extra)
    return env
