"""Load and call the real Lambda handlers in-process, as the Lambda runtime would.

Several execution environments of the same or different functions run at once here, in
threads of one process, where Lambda gives each its own process. Powertools' event
handler keeps the event being resolved in process-wide state: `resolve()` assigns it to
the class `BaseRouter` (`current_event`, `lambda_context`), and every resolver and router
reads it from there. Shared by threads, a request would read another one's event (its
route, its caller): `isolate_request_state` makes that state per thread, which is what
separate processes give the real functions.
"""

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
# Powertools' per-process request state (class attributes of BaseRouter).
REQUEST_STATE = ("current_event", "lambda_context")
_per_thread = threading.local()
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


class _PerThread:
    """A data descriptor whose value belongs to the calling thread."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        try:
            return getattr(_per_thread, self.name)
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, instance: object, value: Any) -> None:
        setattr(_per_thread, self.name, value)


@cache
def isolate_request_state() -> None:
    """Make Powertools' request state per thread (once per process).

    `BaseRouter.current_event = …` (what `resolve()` does) goes through the class's
    metaclass, `app.current_event` through the class's own attributes: both get a
    per-thread descriptor. Nothing else of Powertools changes.
    """
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    for name in REQUEST_STATE:
        type.__setattr__(BaseRouter, name, _PerThread(name))
    per_thread_class = type(
        "PerThreadRouterState",
        (type(BaseRouter),),
        {name: _PerThread(name) for name in REQUEST_STATE},
    )
    type.__setattr__(BaseRouter, "__class__", per_thread_class)


@cache
def load_handler(code_uri: str, handler: str, environment: int = 0) -> Handler:
    """Import `<code_uri>/<module>.py` under a unique name and return its entry point.

    Every function's module is called `handler`, so each gets a module name of its own
    (`sfbroker_fn_orgs_handler`) instead of a `sys.path` entry that would shadow the others.
    `environment` > 0 imports another copy (`…_handler_2`): a further execution
    environment of the same function, with its own resolver (the layer is shared).
    """
    isolate_request_state()
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
