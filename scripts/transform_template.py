"""Expand the SAM template into plain CloudFormation, offline, for cfn-lint.

cfn-lint 1.x no longer runs the SAM transform itself (it only merges Globals and checks
the SAM resource schemas), so the generated roles, permissions, REST API body, stage and
Lambda functions are not linted unless the transformed template is linted too.

Runs in the aws-sam-cli virtualenv (samtranslator lives there, not in .venv):

    .venv-sam/bin/python scripts/transform_template.py template.yaml -o build/template.cfn.json
    .venv/bin/cfn-lint build/template.cfn.json

No credentials, no network: the region is fixed and managed policy names are not looked
up (the template names none; SAM adds the basic-execution and X-Ray policies by ARN).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

REGION = "us-east-1"
# Local CodeUri/ContentUri are uploaded by `sam package`; the transform wants S3 locations.
_PLACEHOLDER_LOCATION = {"Bucket": "sfbroker-placeholder", "Key": "placeholder.zip"}
_LOCAL_CODE_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


def _no_managed_policies() -> dict[str, str]:
    return {}


def transform(template: dict[str, Any]) -> dict[str, Any]:
    """Return the CloudFormation template SAM would deploy for ``template``."""
    ArnGenerator.BOTO_SESSION_REGION_NAME = REGION
    # Feature-toggle chatter ("Feature ... not available") on every run; keep errors only.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for name in _LOCAL_CODE_PROPERTIES:
            if isinstance(properties.get(name), str):
                properties[name] = dict(_PLACEHOLDER_LOCATION)
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    result: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=_no_managed_policies
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default="template.yaml", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)

    transformed = transform(yaml_parse(args.template.read_text(encoding="utf-8")))
    text = json.dumps(transformed, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
