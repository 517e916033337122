"""One cold measurement in a fresh interpreter, run as a script by `tests/bench/cold.py`.

    fresh.py boto3
    fresh.py import  <layer> <code_uri> <module>
    fresh.py serve   <layer> <code_uri> <module> <event.json>
    fresh.py restore <layer> <code_uri> <module> <event.json>
    fresh.py floor   <event.json>              (floor.py by hand: a token from the cache)
    fresh.py replay  <calls.json>              (floor.py: the recorded calls, plain boto3)
    fresh.py floor-restore <event.json>

The clock starts once the interpreter is up and stops when the answer is there. The
`restore` modes stand for SnapStart: init (imports, `runtime.prime`, the floor's clients)
runs before the clock starts; then the after-restore hook and the first request are
timed. The last line printed is `BENCH {"seconds", "cpu", "modules", "bytes"}`: wall and
CPU time of this process, the modules loaded meanwhile and the size of their files.
Handlers print their own lines before it.
"""

import sys
import time

# As in the deployed layer, which has no AWS CRT (here it comes with awscurl, a dev tool):
# botocore and s3transfer import it when present, which would inflate every figure.
sys.modules["awscrt"] = None  # type: ignore[assignment]

clock = {"wall": time.perf_counter(), "cpu": time.process_time()}
loaded_before = set(sys.modules)

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402


def restart_clock() -> None:
    """Init is over (the snapshot): time from here."""
    global loaded_before  # noqa: PLW0603
    clock.update(wall=time.perf_counter(), cpu=time.process_time())
    loaded_before = set(sys.modules)


class Context:
    """The attributes of the Lambda context object Powertools reads."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    memory_limit_in_mb = 512
    aws_request_id = "bench-request"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def _read(path: str) -> Any:
    with open(path) as file:
        return json.load(file)


def _answered(answer: Any) -> None:
    status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
    if status >= 300:
        raise SystemExit(f"the request failed: {answer}")


def main(mode: str, args: list[str]) -> None:
    if mode == "boto3":
        importlib.import_module("boto3")
        return
    if mode in {"floor", "replay", "floor-restore"}:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        floor = importlib.import_module("floor")
        if mode == "floor-restore":
            floor.clients()
            restart_clock()
        serve = floor.replay if mode == "replay" else floor.issue_cached_token
        _answered(serve(_read(args[0])))
        return
    layer, code_uri, module = args[:3]
    sys.path[:0] = [layer, code_uri]
    handler = importlib.import_module(module)
    if mode == "import":
        return
    if mode == "restore":
        runtime = importlib.import_module("sfbroker.runtime")
        runtime.prime()
        restart_clock()
        runtime.after_restore()
    _answered(handler.lambda_handler(_read(args[3]), Context()))


main(sys.argv[1], sys.argv[2:])
wall, cpu = time.perf_counter() - clock["wall"], time.process_time() - clock["cpu"]
new = [sys.modules[name] for name in set(sys.modules) - loaded_before]
files = {getattr(m, "__file__", None) for m in new if m is not None}
size = sum(os.path.getsize(f) for f in files if f and os.path.exists(f))
result = {"seconds": wall, "cpu": cpu, "modules": len(new), "bytes": size}
print("BENCH " + json.dumps(result), flush=True)
