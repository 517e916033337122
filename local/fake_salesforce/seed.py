"""The default world of the local stack: a production org with sandboxes, a Dev Hub, a pool."""

from dataclasses import asdict, dataclass
from datetime import timedelta

from local.fake_salesforce.state import FakeSalesforceState

PRODUCTION_USERNAME = "admin@acme.com"
SANDBOX_NAMES = ("uat", "sit")
DEV_HUB_USERNAME = "hub@acme.com"
POOL_TAG = "ci"
POOL_SIZE = 5


@dataclass(frozen=True)
class DefaultSeed:
    """What `seed_default` created, with an SFDX auth URL for every org that has one."""

    production_username: str
    production_auth_url: str
    sandbox_names: tuple[str, ...]
    dev_hub_username: str
    dev_hub_auth_url: str
    pool_tag: str
    pool_usernames: tuple[str, ...]
    pool_auth_urls: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (tuples become lists)."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}


def seed_default(state: FakeSalesforceState) -> DefaultSeed:
    """Create the default world in `state` (once; later calls return the first result).

    - production org `admin@acme.com` (Enterprise Edition) with sandboxes `uat` and `sit`,
      both `Completed` (users `admin@acme.com.uat`, `admin@acme.com.sit`);
    - Dev Hub `hub@acme.com` with 5 pool scratch orgs tagged `ci`: ScratchOrgInfo rows
      `Active`/`Available` whose `SfdxAuthUrl__c` works against this fake, newest first
      one minute apart, plus their ActiveScratchOrg rows.

    The server must be started first: auth URLs carry its host and port.
    """
    with state.lock:
        if state.default_seed is not None:
            return state.default_seed
        state.create_production_org(PRODUCTION_USERNAME, name="Acme")
        for name in SANDBOX_NAMES:
            state.create_sandbox(PRODUCTION_USERNAME, name)
        state.create_dev_hub(DEV_HUB_USERNAME)
        now = state.now()
        pool = [
            state.create_scratch_org(
                DEV_HUB_USERNAME, pool_tag=POOL_TAG, created_date=now - timedelta(minutes=i)
            )
            for i in range(POOL_SIZE)
        ]
        state.default_seed = DefaultSeed(
            production_username=PRODUCTION_USERNAME,
            production_auth_url=state.mint_auth_url(PRODUCTION_USERNAME),
            sandbox_names=SANDBOX_NAMES,
            dev_hub_username=DEV_HUB_USERNAME,
            dev_hub_auth_url=state.mint_auth_url(DEV_HUB_USERNAME),
            pool_tag=POOL_TAG,
            pool_usernames=tuple(s.user.username for s in pool),
            pool_auth_urls=tuple(s.auth_url for s in pool if s.auth_url),
        )
        return state.default_seed
