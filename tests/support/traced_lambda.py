"""Run the handlers once through every path that touches a secret, with tracing on.

Started by `tests/integration/test_traces.py` in a process of its own whose environment
is a Lambda's (`LAMBDA_TASK_ROOT`, a sampled `_X_AMZN_TRACE_ID`, `AWS_XRAY_DAEMON_ADDRESS`
pointing at the test's UDP listener): Powertools' Tracer then traces, and patches
botocore and requests, exactly as deployed. Prints every answer body as one JSON list.

Usage: python -m tests.support.traced_lambda <aws endpoint url> <auth url> [capture]
With `capture`, the template's POWERTOOLS_TRACER_CAPTURE_* settings are turned back on,
so only what the code itself says keeps answers out of the trace.
"""

from __future__ import annotations

import json
import os
import sys

import boto3

from local import template as sam
from tests.support.broker import Broker, configure_handlers
from tests.support.token_api import TokenApi, bearer

USER = {"username": "admin@acme.com"}
CAPTURE_SETTINGS = ("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "POWERTOOLS_TRACER_CAPTURE_ERROR")


def main(aws_endpoint_url: str, auth_url: str, capture: bool) -> None:
    template = sam.load_template()
    resources = configure_handlers(
        template,
        os.environ.__setitem__,
        aws_endpoint_url=aws_endpoint_url,
        overrides=dict.fromkeys(CAPTURE_SETTINGS, "true") if capture else None,
    )
    broker = Broker(
        template=template,
        table_name=resources.table_names["Table"],
        dynamodb=boto3.client("dynamodb", endpoint_url=aws_endpoint_url),
    )
    token_route = "/orgs/{username}/token"
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url})  # rotated away: 400
    broker.call("POST", token_route, path_params=USER)
    broker.call("POST", token_route, path_params=USER, json_body={"forceRefresh": True})
    # Refused and malformed requests that carry a secret.
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url + "/x"})
    broker.call("POST", "/orgs", json_body={"sfdxAuthUrl": auth_url, "isDevHub": "maybe"})
    broker.call("POST", "/orgs", raw_body='{"sfdxAuthUrl": "' + auth_url + '"')
    created = broker.call(
        "POST", "/api-tokens", json_body={"name": "ci", "scopes": ["token:issue"]}
    )
    api = TokenApi(broker)
    api.call("POST", token_route, authorization=bearer(created.body["token"]), path_params=USER)
    api.call(
        "POST", token_route, authorization=bearer(created.body["token"] + "x"), path_params=USER
    )
    print(json.dumps(broker.answers))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], capture=sys.argv[3:] == ["capture"])
