"""The call budget of each request, exact: DynamoDB, KMS and Salesforce calls.

The same scenarios `make bench` prints (tests/bench/calls.py), run on both databases.
A request that makes one call more (or fewer) than its budget fails here.
"""

from __future__ import annotations

from collections import Counter

import pytest

from local.fake_salesforce import FakeSalesforceServer
from tests.bench.calls import SCENARIOS, measure, only_salesforce
from tests.support.broker import Broker


@pytest.mark.usefixtures("acme")
def test_every_request_keeps_to_its_call_budget(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    for scenario in SCENARIOS:  # in order: each starts from where the previous one left
        calls = only_salesforce(measure(scenario, broker, salesforce), scenario.budget)
        assert calls == Counter(scenario.budget), scenario.name
