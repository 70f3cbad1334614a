"""Who is calling: optional bearer-token authentication and the caller identity for cost
attribution.

With a tokens file (``TIERGATE_AUTH_TOKENS_FILE``), every RPC but the health check needs
``authorization: Bearer <token>``; each line of the file is ``caller=token`` (or a bare token,
whose caller is ``token-N`` by line). Tokens are compared in constant time. The identity of an
authenticated call is its caller name; without auth it is the ``x-tiergate-caller`` metadata the
caller sends (unverified), else ``anonymous``.
"""

from __future__ import annotations

import contextvars
import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_status import rpc_status

from tiergate import errors, status

CALLER_METADATA = "x-tiergate-caller"
ANONYMOUS = "anonymous"
# Probes cannot send credentials, and neither health nor the schema (reflection) reveals data.
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)


def load_tokens(path: Path) -> dict[str, str]:
    """token -> caller name, from a file of ``caller=token`` or bare-token lines."""
    tokens: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        caller, sep, token = line.partition("=")
        if not sep:
            caller, token = f"token-{number}", line
        if not token.strip():
            raise ValueError(f"{path}:{number}: empty token")
        tokens[token.strip()] = caller.strip()
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    return tokens


def caller_of(context: grpc.aio.ServicerContext) -> str:
    """The authenticated caller, else the caller's own ``x-tiergate-caller``, else anonymous."""
    authenticated = _caller.get()
    if authenticated is not None:
        return authenticated
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_METADATA and isinstance(value, str) and value.strip():
            return value.strip()[:128]
    return ANONYMOUS


def _match(tokens: Mapping[str, str], presented: str) -> str | None:
    """The caller whose token equals ``presented``; every token is compared, in constant time."""
    found = None
    for token, caller in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = caller
    return found


class BearerAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Rejects calls without a known bearer token with UNAUTHENTICATED (and an ErrorInfo)."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = dict(tokens)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_SERVICES):
            return handler
        presented = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, credential = value.partition(" ")
                if scheme.lower() == "bearer":
                    presented = credential.strip()
        caller = _match(self._tokens, presented) if presented else None
        if handler.unary_unary is None:
            raise AssertionError(f"{details.method}: only unary task RPCs are authenticated")
        return _with_caller(handler, caller)


def _with_caller(handler: grpc.RpcMethodHandler, caller: str | None) -> grpc.RpcMethodHandler:
    inner = handler.unary_unary

    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if caller is None:
            err = errors.Unauthenticated("a valid bearer token is required")
            await context.abort_with_status(rpc_status.to_status(status.to_status(err)))
        token = _caller.set(caller)
        try:
            return await inner(request, context)
        finally:
            _caller.reset(token)

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
