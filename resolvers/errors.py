"""Errors a client sees: GraphQL errors carrying a contract `extensions.code`.

The codes are the contract's list (supergraph.graphql header). Anything else a
resolver raises is an internal error, masked before it reaches the client.
"""
from __future__ import annotations

from typing import Any

from graphql import GraphQLError

CODES = (
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "QUERY_TOO_COMPLEX",
    "MISMATCHED_DEVICES",
    "STALE_DEVICES",
    "INTERNAL_SERVER_ERROR",
)


class ApiError(GraphQLError):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "sign in first") -> None:
        super().__init__(message)


class Forbidden(ApiError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "not allowed") -> None:
        super().__init__(message)


class NotFound(ApiError):
    code = "NOT_FOUND"

    def __init__(self, what: str = "object") -> None:
        super().__init__(f"{what} not found")


class BadUserInput(ApiError):
    """Invalid input; `field` names the offending input field (e.g. `username`)."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, field: str | None = None) -> None:
        if field is None:
            super().__init__(message)
        else:
            super().__init__(message, field=field)


class Conflict(ApiError):
    code = "CONFLICT"

    def __init__(self, message: str, field: str | None = None) -> None:
        if field is None:
            super().__init__(message)
        else:
            super().__init__(message, field=field)


class RateLimited(ApiError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; retry in {retry_after}s", retryAfter=retry_after)
        self.retry_after = retry_after


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, limitBytes=limit)


class QueryTooComplex(ApiError):
    code = "QUERY_TOO_COMPLEX"

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message, limit=limit)


def not_on_platform(platform: str) -> BadUserInput:
    return BadUserInput(f"not available on this platform ({platform})")
