"""Pool cleanup: the EventBridge schedule, and `POST /pools/{tag}/cleanup`."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from sfbroker import runtime
from sfbroker.http import build_resolver
from sfbroker.models import CleanupReport
from sfbroker.observability import logger, traced
from sfbroker.routes import cleanup

runtime.settings()  # a missing or malformed variable fails the init, naming it

app = build_resolver(cleanup.build_router(runtime.pool_cleanup), guard=runtime.access_control())


@logger.inject_lambda_context
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.events":  # the schedule
        report = runtime.pool_cleanup().run_scheduled()
        return CleanupReport.of(report).model_dump(mode="json", by_alias=True)
    return app.resolve(event, context)
