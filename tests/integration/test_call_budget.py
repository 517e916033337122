"""The call budget of each request, exact: DynamoDB, KMS and Salesforce calls; and the
import budget of each handler (which services a cold start loads).

The same scenarios `make bench` prints (tests/bench/calls.py), run on both databases.
A request that makes one call more (or fewer) than its budget fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from local import template as sam
from local.fake_salesforce import FakeSalesforceServer
from tests.bench.calls import SCENARIOS, measure, only_salesforce
from tests.support.broker import Broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("acme")
def test_every_request_keeps_to_its_call_budget(
    broker: Broker, salesforce: FakeSalesforceServer
) -> None:
    for scenario in SCENARIOS:  # in order: each starts from where the previous one left
        calls = only_salesforce(measure(scenario, broker, salesforce), scenario.budget)
        assert calls == Counter(scenario.budget), scenario.name


# What each function's handler loads at import (a cold start), as deployed (Tracing=sdk,
# the Lambda variables set): its own routes' services and what every function shares, no
# other function's, and never `requests` (loaded when Salesforce is first called).
SHARED = {"services.api_tokens", "services.audit", "services.tokens"}
SERVICES_AT_IMPORT = {
    "OrgsFunction": SHARED | {"services.registration"},
    "TokensFunction": SHARED,
    "SandboxesFunction": SHARED | {"services.jit"},
    "EnvironmentsFunction": SHARED | {"services.environments"},
    "AuthorizerFunction": SHARED,
    "AdminFunction": SHARED,
    "PoolsFunction": SHARED | {"services.pools"},
    "PoolCleanupFunction": SHARED | {"services.cleanup", "services.pools"},
}
REPORT = """
import importlib, json, sys
sys.modules["awscrt"] = None  # not in the layer (botocore imports it when present)
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def test_a_handler_imports_only_what_its_function_serves() -> None:
    specs = {spec.logical_id: spec for spec in sam.functions(sam.load_template())}
    assert set(specs) == set(SERVICES_AT_IMPORT)  # a new function gets its line here
    for name, spec in specs.items():
        code = ROOT / spec.code_uri
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(code)]),
            "TABLE_NAME": "sfbroker-budget",
            "KMS_KEY_ID": "alias/sfbroker-budget",
            "IDEMPOTENCY_TABLE_NAME": "sfbroker-budget-idempotency",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "false",
            "LAMBDA_TASK_ROOT": str(code),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "_X_AMZN_TRACE_ID": f"Root=1-67891233-{'0' * 24};Parent={'5' * 16};Sampled=1",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
        module = spec.handler.rsplit(".", 1)[0]
        run = subprocess.run(
            [sys.executable, "-c", REPORT, module],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        modules = set(json.loads(run.stdout.splitlines()[-1]))
        services = {m[len("sfbroker.") :] for m in modules if m.startswith("sfbroker.services.")}
        assert services == SERVICES_AT_IMPORT[name], name
        assert "requests" not in modules, name
        assert "sfbroker.salesforce.client" not in modules, name
