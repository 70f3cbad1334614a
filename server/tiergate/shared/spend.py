"""``tiergate.v1.SpendService``: what callers have spent, reserved and have left.

With bearer tokens configured a caller sees only its own budgets; without them (a
development setup with no verified callers) every budget is shown.
"""

from __future__ import annotations

import grpc
import structlog

from tiergate import errors
from tiergate.serving import status
from tiergate.serving.auth import Authenticator
from tiergate.shared.backends import StoreUnavailable
from tiergate.shared.budgets import Budgets
from tiergate.v1 import spend_service_pb2, spend_service_pb2_grpc

log = structlog.get_logger("tiergate.spend")


class SpendServicer(spend_service_pb2_grpc.SpendServiceServicer):
    def __init__(self, budgets: Budgets | None, authenticator: Authenticator) -> None:
        self._budgets = budgets
        self._auth = authenticator

    async def GetSpend(  # the RPC's name
        self,
        request: spend_service_pb2.GetSpendRequest,
        context: grpc.aio.ServicerContext[
            spend_service_pb2.GetSpendRequest, spend_service_pb2.GetSpendResponse
        ],
    ) -> spend_service_pb2.GetSpendResponse:
        caller = self._auth.identify(context)
        wanted = request.caller or None
        try:
            if self._auth.required:
                if not caller.verified:
                    raise errors.Unauthenticated("a valid bearer token is required")
                if wanted not in (None, caller.label):
                    raise errors.InvalidRequest(
                        [errors.FieldViolation("caller", "a caller may see only its own spend")]
                    )
                wanted = caller.label
            rows = [] if self._budgets is None else await self._budgets.spend(wanted)
        except errors.TiergateError as err:
            await context.abort_with_status(
                status.grpc_status(err, time_left_s=context.time_remaining())
            )
            raise AssertionError("unreachable") from None  # pragma: no cover
        except StoreUnavailable:
            down = errors.SharedStateUnavailable(
                "the budget store is unreachable; retry shortly",
                retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
            )
            await context.abort_with_status(
                status.grpc_status(down, time_left_s=context.time_remaining())
            )
            raise AssertionError("unreachable") from None  # pragma: no cover
        return spend_service_pb2.GetSpendResponse(
            periods=[
                spend_service_pb2.BudgetPeriod(
                    scope=row.scope,
                    period=row.period,
                    limit_nanos=row.limit,
                    spent_nanos=row.spent,
                    reserved_nanos=row.reserved,
                    left_nanos=row.left,
                )
                for row in rows
            ]
        )


def add_spend_service(servicer: SpendServicer, server: grpc.aio.Server) -> None:
    spend_service_pb2_grpc.add_SpendServiceServicer_to_server(servicer, server)
