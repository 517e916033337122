"""Create the template's tables and keys on local AWS and say how the functions reach them.

One function for the local stack and the integration tests alike: what they provision
and the environment the handlers get come from ``template.yaml``, nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3

from local import template as sam

__all__ = [
    "LOCAL_SALESFORCE_HTTP_HOSTS",
    "LOCAL_SALESFORCE_TLS_HOSTS",
    "LocalResources",
    "provision",
    "table_name",
]

# The fake Salesforce speaks plain http on 127.0.0.1; the broker allows http only for these.
LOCAL_SALESFORCE_HTTP_HOSTS: Final = "127.0.0.1:*,localhost:*"
# ... or https as `localhost` (`salesforce_tls`): allowed over https, and nothing over http.
LOCAL_SALESFORCE_TLS_HOSTS: Final = "localhost:*"
_REGION: Final = sam.PSEUDO_PARAMETERS["AWS::Region"]
_WORD: Final = re.compile(r"[A-Z][a-z0-9]*")


@dataclass(frozen=True)
class LocalResources:
    """What :func:`provision` created.

    ``refs`` maps logical ids (and ``"Logical.Arn"``) to physical names/ARNs;
    ``environment`` is what every function's process needs: the template's variables
    resolved against ``refs``, plus the local endpoints.
    """

    table_names: dict[str, str]
    key_arns: dict[str, str]
    aliases: dict[str, str]
    refs: dict[str, str]
    environment: dict[str, str]


def table_name(stack_name: str, logical_id: str) -> str:
    """The physical name of a table: ``sfbroker-<stack>[-<logical id words, minus Table>]``.

    ``Table`` -> ``sfbroker-local``; ``AuditTable`` -> ``sfbroker-local-audit``.
    """
    words = [word.lower() for word in _WORD.findall(logical_id) if word != "Table"]
    return "-".join(["sfbroker", stack_name, *words])


def provision(
    *,
    aws_endpoint_url: str,
    dynamodb_endpoint_url: str | None = None,
    stack_name: str = "local",
    template: Mapping[str, Any] | None = None,
    salesforce_tls: bool = False,
) -> LocalResources:
    """Create every table, KMS key and alias of the template; return names and environment.

    Tables go to ``dynamodb_endpoint_url`` (DynamoDB Local) or else to
    ``aws_endpoint_url`` (moto), which also holds the keys. ``stack_name`` stands in for
    ``AWS::StackName`` (aliases: ``alias/sfbroker-<stack_name>``) and names the tables
    (:func:`table_name`); use a fresh one per test to share one moto server. Credentials
    and region come from the environment, as for any boto3 client.

    The handlers reach the fake Salesforce over plain http on 127.0.0.1/localhost, or,
    with ``salesforce_tls``, over https only, on ``localhost`` (added to the template's
    ``SALESFORCE_ALLOWED_HOSTS``); trusting the fake's CA is then up to the caller.
    """
    template = template if template is not None else sam.load_template()
    parameters = {"AWS::StackName": stack_name}
    database = dynamodb_endpoint_url or aws_endpoint_url
    dynamodb = boto3.client("dynamodb", endpoint_url=database, region_name=_REGION)
    kms = boto3.client("kms", endpoint_url=aws_endpoint_url, region_name=_REGION)

    table_names = {
        definition.logical_id: table_name(stack_name, definition.logical_id)
        for definition in sam.table_definitions(template)
    }
    sam.create_tables(dynamodb, table_names, template=template)
    refs: dict[str, str] = {}
    for logical_id, name in table_names.items():
        refs[logical_id] = name
        refs[f"{logical_id}.Arn"] = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]

    key_arns = {}
    for logical_id in sam.kms_key_ids(template):
        metadata = kms.create_key(Description=f"sfbroker {stack_name} {logical_id}")["KeyMetadata"]
        key_arns[logical_id] = metadata["Arn"]
        refs[logical_id] = metadata["KeyId"]
        refs[f"{logical_id}.Arn"] = metadata["Arn"]

    aliases = {}
    for alias in sam.kms_aliases(template):
        name = sam.resolve(alias.alias_name, refs, parameters, template=template)
        target = refs[alias.target_key_logical_id]
        if any(a["AliasName"] == name for a in kms.list_aliases()["Aliases"]):
            kms.update_alias(AliasName=name, TargetKeyId=target)
        else:
            kms.create_alias(AliasName=name, TargetKeyId=target)
        aliases[name] = key_arns[alias.target_key_logical_id]

    environment = _functions_environment(template, refs, parameters)
    environment["AWS_ENDPOINT_URL"] = aws_endpoint_url
    if dynamodb_endpoint_url:
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint_url
    environment.update(_salesforce_hosts(environment, salesforce_tls=salesforce_tls))
    return LocalResources(table_names, key_arns, aliases, refs, environment)


def _salesforce_hosts(environment: Mapping[str, str], *, salesforce_tls: bool) -> dict[str, str]:
    if not salesforce_tls:
        return {"SALESFORCE_HTTP_HOSTS": LOCAL_SALESFORCE_HTTP_HOSTS}
    allowed = [h for h in environment.get("SALESFORCE_ALLOWED_HOSTS", "").split(",") if h]
    extra = [h for h in LOCAL_SALESFORCE_TLS_HOSTS.split(",") if h not in allowed]
    return {"SALESFORCE_ALLOWED_HOSTS": ",".join([*allowed, *extra]), "SALESFORCE_HTTP_HOSTS": ""}


def _functions_environment(
    template: Mapping[str, Any], refs: Mapping[str, str], parameters: Mapping[str, str]
) -> dict[str, str]:
    # In-process the functions share one environment: they must agree on every variable.
    merged: dict[str, str] = {}
    for spec in sam.functions(template):
        variables = sam.function_environment(spec, refs, parameters, template=template)
        for name, value in variables.items():
            if merged.setdefault(name, value) != value:
                raise ValueError(
                    f"functions disagree on {name}: one process cannot give each its own value"
                )
    return merged
