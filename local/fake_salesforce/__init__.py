"""A fake Salesforce speaking the wire protocol of SALESFORCE.md, for tests and the local stack.

with start_fake_salesforce() as fake:
    seed = fake.seed_default()
    fake.faults.add(endpoint="token", kind="http_503", times=2)
    ...
    assert fake.counts["oauth2/token"] == 3
"""

from local.fake_salesforce.faults import Fault, FaultInjector, FaultKind
from local.fake_salesforce.seed import DefaultSeed
from local.fake_salesforce.server import FakeSalesforceServer, start_fake_salesforce
from local.fake_salesforce.state import (
    DEFAULT_CLIENT_ID,
    FakeSalesforceState,
    Org,
    Sandbox,
    ScratchOrg,
    User,
)
from local.fake_salesforce.traffic import RequestRecord, TrafficLog

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DefaultSeed",
    "FakeSalesforceServer",
    "FakeSalesforceState",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "Org",
    "RequestRecord",
    "Sandbox",
    "ScratchOrg",
    "TrafficLog",
    "User",
    "start_fake_salesforce",
]
