"""A Lambda context for calling handlers and resolvers in tests."""

from __future__ import annotations

from local.lambdas import LocalContext


def context(function_name: str) -> LocalContext:
    return LocalContext(function_name=function_name)
