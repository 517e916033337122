"""The floor: the least a handler can do to serve the same request, written by hand.

`issue_cached_token` answers a token request from the cache with the calls the broker
makes for it — one consistent DynamoDB Query of the org, KMS `Decrypt` of the data key,
AES-256-GCM of the token, the audit PutItem beside the read — and a JSON answer. No
framework, no validation, no logging, no tracing: what is left is the price of boto3,
cryptography and the calls. `replay` makes a recorded list of AWS calls with plain boto3
clients (the floor of a function that decrypts nothing); a replayed write whose
condition no longer holds still costs its call. Imported by `fresh.py` only.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def clients() -> tuple[Any, Any]:
    """New DynamoDB and KMS clients (the service models are loaded once per process)."""
    return boto3.client("dynamodb"), boto3.client("kms")


def issue_cached_token(event: dict[str, Any]) -> dict[str, Any]:
    dynamodb, kms = clients()
    table = os.environ["TABLE_NAME"]
    username = event["pathParameters"]["username"].lower()
    now = datetime.now(UTC)
    audit = threading.Thread(
        target=dynamodb.put_item,
        kwargs={
            "TableName": table,
            "Item": {
                "PK": {"S": f"AUDIT#{now.date().isoformat()}"},
                "SK": {"S": f"{now.isoformat()}#{event['requestContext']['requestId']}"},
                "at": {"S": now.isoformat()},
                "requestId": {"S": event["requestContext"]["requestId"]},
                "actor": {"S": str(event["requestContext"]["identity"]["userArn"])},
                "action": {"S": "token.issue"},
                "target": {"S": f"org:{username}"},
                "outcome": {"S": "success"},
                "route": {"S": "POST /orgs/{username}/token"},
                "ttl": {"N": str(int(now.timestamp()) + 90 * 86400)},
            },
        },
    )
    audit.start()
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORG#{username}"}},
        ConsistentRead=True,
    )["Items"]
    token = next(item for item in items if item["SK"]["S"] == "TOKEN")
    envelope = {name: value["S"] for name, value in token["token"]["M"].items() if "S" in value}
    record = f"ORG#{username}/TOKEN"
    key = kms.decrypt(
        CiphertextBlob=base64.b64decode(envelope["wk"]),
        EncryptionContext={"app": "sfbroker", "record": record},
        KeyId=envelope["kid"],
    )["Plaintext"]
    access_token = AESGCM(key).decrypt(
        base64.b64decode(envelope["n"]), base64.b64decode(envelope["ct"]), record.encode()
    )
    audit.join()
    expires = datetime.fromtimestamp(int(token["expiresAt"]["N"]), UTC)
    body = {
        "accessToken": access_token.decode(),
        "instanceUrl": token["instanceUrl"]["S"],
        "username": username,
        "orgId": token["orgId"]["S"],
        "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": "cache",
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def replay(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Make each recorded call (`{"service", "method", "params"}`) with a plain client."""
    clients: dict[str, Any] = {}
    answers = []
    for call in calls:
        service = call["service"]
        if service not in clients:
            clients[service] = boto3.client(service)
        params = {k: _bytes(v) for k, v in call["params"].items()}
        try:
            answers.append(getattr(clients[service], call["method"])(**params))
        except ClientError as error:  # e.g. a condition that held once: the call was made
            answers.append(error.response)
    body = json.dumps([a.get("Items", a.get("Item", {})) for a in answers], default=str)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}


def _bytes(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value
