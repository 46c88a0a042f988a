"""What a client sees of an error: a contract code always, internals never.

- Errors carrying a contract code (ApiError and our validation rules) pass through.
- Parse and validation errors (and input values a scalar rejected) become BAD_USER_INPUT:
  the contract has no GRAPHQL_VALIDATION_FAILED; the message still says what is wrong.
- A document over the parser's token limit becomes QUERY_TOO_COMPLEX.
- Anything else is a bug or an outage: the client gets "Internal server error" with the
  request id, and the log gets the traceback under the same id.

Masking runs in a schema extension (so websockets and subscriptions are covered) and
again in the HTTP view (so errors raised before the extension sees the result, or by a
schema built without it, are covered too); it is idempotent.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from resolvers.errors import CODES, ApiError, BadUserInput, QueryTooComplex
from server.logs import logger

INTERNAL_MESSAGE = "Internal server error"
INTERNAL_CODE = "INTERNAL_SERVER_ERROR"
_TOO_MANY_TOKENS = re.compile(r"Document contains more than (\d+) tokens")

log = logger("errors")


@dataclass(frozen=True)
class Origin:
    """Which request an error belongs to, for the log line."""

    request_id: str
    platform: str | None = None
    operation: str | None = None


def client_errors(errors: list[GraphQLError], origin: Origin) -> list[GraphQLError]:
    return [client_error(error, origin) for error in errors]


def client_error(error: GraphQLError, origin: Origin) -> GraphQLError:
    if _has_contract_code(error):
        return error
    if match := _TOO_MANY_TOKENS.search(error.message):
        limit = int(match.group(1))
        return QueryTooComplex(
            f"the document has more than {limit} tokens; the limit is {limit}:"
            " send a smaller query",
            limit=limit,
        )
    if _is_internal(error):
        _log_internal(error, origin)
        return GraphQLError(
            INTERNAL_MESSAGE,
            error.nodes,
            path=error.path,
            extensions={"code": INTERNAL_CODE, "requestId": origin.request_id},
        )
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        extensions={**(error.extensions or {}), "code": BadUserInput.code},
    )


def _has_contract_code(error: GraphQLError) -> bool:
    original = error.original_error
    if isinstance(error, ApiError) or isinstance(original, ApiError):
        return True
    # Raised on purpose with a contract code (our rules, or an already masked error).
    return (error.extensions or {}).get("code") in CODES and (
        original is None or isinstance(original, GraphQLError)
    )


def _is_internal(error: GraphQLError) -> bool:
    if error.path is not None:
        return True  # a resolver, or the executor completing its value, failed
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False  # graphql-core's own: syntax, validation, variable coercion
    # A scalar rejecting an input value points at that input; a bare exception is a bug.
    return not error.nodes


def _log_internal(error: GraphQLError, origin: Origin) -> None:
    cause: BaseException = error.original_error or error
    log.error(
        "internal error: %s",
        error.message,
        exc_info=(type(cause), cause, cause.__traceback__),
        extra={
            "request_id": origin.request_id,
            "platform": origin.platform,
            "operation": origin.operation,
            "path": ".".join(map(str, error.path)) if error.path else None,
        },
    )


class MaskInternalErrors(MaskErrors):
    """strawberry's MaskErrors plumbing (results and streams), our rule of what to mask."""

    def _process_result(self, result: object) -> None:
        """strawberry's, with its test of a runtime-checkable Protocol (`errors`
        present) made an attribute read: that isinstance cost about 10 µs of every
        operation, errors or not."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context = self.execution_context
        request = context.context
        try:
            operation = context.operation_name
        except Exception:  # noqa: BLE001 - an unparsable document has no operation
            operation = None
        origin = Origin(
            request_id=getattr(request, "request_id", None) or uuid.uuid4().hex,
            platform=getattr(request, "platform", None),
            operation=operation,
        )
        return client_errors(errors, origin)
