"""Powertools Idempotency over its own table: a retried request runs its action once.

What is stored is the action's result: callers keep it free of secrets (a pool fetch
stores only the reference of the org it claimed, see docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from sfbroker.errors import Conflict, DependencyUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient


class IdempotencyRecords:
    """Runs an action once per scope; later calls with the same scope get its first result."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, *, expires_after_seconds: int
    ) -> None:
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._config = IdempotencyConfig(expires_after_seconds=expires_after_seconds)

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Let an in-progress record expire with the invocation that wrote it (a crashed
        fetch does not block its retry until the record's full expiry)."""
        self._config.register_lambda_context(context)

    def once(
        self, name: str, scope: Mapping[str, str], action: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The result of `action`, run at most once per (`name`, `scope`) while remembered.

        A failing action is not remembered (the next call runs it again); a call while the
        first is still running is a 409 `conflict`.
        """

        def run(scope: Mapping[str, str]) -> dict[str, Any]:
            return action()

        remembered = idempotent_function(
            run,
            data_keyword_argument="scope",
            persistence_store=self._persistence,
            config=self._config,
            key_prefix=name,
        )
        try:
            result: dict[str, Any] = remembered(scope=dict(scope))
        except IdempotencyAlreadyInProgressError:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly"
            ) from None
        except IdempotencyPersistenceLayerError as error:
            raise DependencyUnavailable("The idempotency store is unavailable") from error
        return result
