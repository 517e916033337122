"""Load and call the real Lambda handlers in-process, as the Lambda runtime would."""

from __future__ import annotations

import importlib.util
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

Handler = Callable[[dict[str, Any], Any], Any]
# Called with (event, result) after every invocation: the tests' secret scan reads answers.
observers: list[Callable[[dict[str, Any], Any], None]] = []


@dataclass
class LocalContext:
    """The attributes of the Lambda context object our handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@cache
def load_handler(code_uri: str, handler: str, environment: int = 0) -> Handler:
    """Import `<code_uri>/<module>.py` under a unique name and return its entry point.

    Every function's module is called `handler`, so each gets a module name of its own
    (`sfbroker_fn_orgs_handler`) instead of a `sys.path` entry that would shadow the others.
    `environment` > 0 imports another copy (`…_handler_2`): a further execution
    environment of the same function, with its own resolver (the layer is shared).
    """
    module_name, _, attribute = handler.rpartition(".")
    directory = (REPO_ROOT / code_uri).resolve()
    unique = f"sfbroker_fn_{directory.name}_{module_name}" + (
        f"_{environment}" if environment else ""
    )
    spec = importlib.util.spec_from_file_location(unique, directory / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {handler} from {code_uri}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    entry: Handler = getattr(module, attribute)
    return entry


_idle: dict[tuple[str, str], list[int]] = defaultdict(list)
_started: dict[tuple[str, str], int] = defaultdict(int)
_environments = threading.Lock()


def invoke(code_uri: str, handler: str, event: dict[str, Any], function_name: str) -> Any:
    """Call a handler with `event` and a fresh context, as Lambda does: an execution
    environment handles one event at a time (Powertools' resolver holds the current event
    and its context), so concurrent calls each get an idle environment or a new one."""
    key = (code_uri, handler)
    with _environments:
        if _idle[key]:
            environment = _idle[key].pop()
        else:
            environment = _started[key]
            _started[key] += 1
    try:
        entry = load_handler(code_uri, handler, environment)
        return run(entry, event, function_name)
    finally:
        with _environments:
            _idle[key].append(environment)


def run(entry: Handler, event: dict[str, Any], function_name: str) -> Any:
    """Call a loaded handler with `event` and a fresh context; observers see the result."""
    result = entry(event, LocalContext(function_name=function_name))
    for observe in observers:
        observe(event, result)
    return result
