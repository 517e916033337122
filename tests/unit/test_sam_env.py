"""local/env.json (`sam local --env-vars`) agrees with template.yaml and the local stack."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local import sam_local
from local import template as sam
from local.provision import table_name
from local.template import REPO_ROOT

# Documentation of what the shell running sam provides: SAM ignores them (undeclared).
DOCUMENTED_ONLY = {"AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
STACK_NAME = "local"  # what `make run` provisions (local/provision.py)
_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return sam.load_template()


@pytest.fixture(scope="module")
def env() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(sam_local.ENV_FILE.read_text())
    return {name: variables for name, variables in loaded.items() if name != "//"}


def _references(value: Any) -> set[str]:
    """Logical ids (or parameters) a template value refers to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            return set(_SUB_REFERENCE.findall(text))
        return set().union(*map(_references, value.values()))
    if isinstance(value, list):
        return set().union(*map(_references, value))
    return set()


def _local_refs(template: dict[str, Any]) -> dict[str, str]:
    """What the template's tables and keys are called in the local stack (`make run`)."""
    refs = {}
    for definition in sam.table_definitions(template):
        refs[definition.logical_id] = table_name(STACK_NAME, definition.logical_id)
    for alias in sam.kms_aliases(template):
        name = sam.resolve(alias.alias_name, {}, {"AWS::StackName": STACK_NAME}, template=template)
        refs[alias.target_key_logical_id] = refs[f"{alias.target_key_logical_id}.Arn"] = name
    return refs


def test_one_entry_per_function_of_the_template(
    template: dict[str, Any], env: dict[str, Any]
) -> None:
    assert set(env) == {spec.logical_id for spec in sam.functions(template)}


def test_only_variables_the_function_declares(
    template: dict[str, Any], env: dict[str, Any]
) -> None:
    # SAM silently ignores an override of a variable the function does not declare.
    for spec in sam.functions(template):
        assert set(env[spec.logical_id]) - DOCUMENTED_ONLY <= set(spec.environment), spec.logical_id


def test_every_variable_naming_a_resource_names_the_local_one(
    template: dict[str, Any], env: dict[str, Any]
) -> None:
    refs = _local_refs(template)
    parameters = {"AWS::StackName": STACK_NAME}
    checked = 0
    for spec in sam.functions(template):
        for name, value in spec.environment.items():
            if _references(value) & set(template["Resources"]):
                assert env[spec.logical_id].get(name) == sam.resolve(
                    value, refs, parameters, template=template
                ), f"{spec.logical_id}.{name}"
                checked += 1
    assert checked >= len(env) * 2  # the table and the key, at least


def test_the_functions_call_the_stacks_aws_endpoint_from_the_container(env: dict[str, Any]) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    (aws_port,) = re.findall(r"^AWS_PORT \?= (\d+)$", makefile, re.MULTILINE)
    for variables in env.values():
        assert variables["AWS_ENDPOINT_URL"] == f"http://{sam_local.HOST_NAME}:{aws_port}"
        # The fake Salesforce's URLs: the docker bridge (BIND) or host.docker.internal.
        http_hosts = variables["SALESFORCE_HTTP_HOSTS"].split(",")
        assert {f"{sam_local.HOST_NAME}:*", "172.17.0.1:*"} <= set(http_hosts)


def test_the_tier_moves_only_the_endpoint_and_the_salesforce_hosts(env: dict[str, Any]) -> None:
    derived = sam_local.container_env("http://host.docker.internal:1234", ["172.17.0.1:*"])
    for function, variables in env.items():
        moved = {"AWS_ENDPOINT_URL", "SALESFORCE_ALLOWED_HOSTS", "SALESFORCE_HTTP_HOSTS"}
        assert {k: v for k, v in derived[function].items() if k not in moved} == {
            k: v for k, v in variables.items() if k not in moved
        }
        assert derived[function]["AWS_ENDPOINT_URL"] == "http://host.docker.internal:1234"
        # No real Salesforce host: nothing leaves the machine.
        assert derived[function]["SALESFORCE_ALLOWED_HOSTS"] == "172.17.0.1:*"
