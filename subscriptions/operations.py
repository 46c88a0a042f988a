"""Queries and mutations sent over a socket, run straight through graphql-core.

HTTP requests go through `schema.execute`, strawberry's runner. Per operation it
builds an execution context, an extensions runner and a context manager for
every hook, looks the document up in the caches again and converts the result:
about 80 µs of CPU per operation here, for nothing a socket needs, because the
socket's operation is already prepared (subscriptions/documents.py: parsed and
validated with the same rules, cached per query text). Mobile clients send on
the socket they receive on, so every relayed message is such an operation
(bench/messaging.py), and that runner was a fifth of the server's CPU per message.

So the rules `ServeOperation` (server/limits.py) applies around strawberry's
runner are applied here by the same functions, in the same order: the cost
check (server/cost.py, through the preparer's cache), the operation's name for
logs and metrics (`record_operation`), the rate limits (server/ratelimit.py
`over_limits`); then graphql-core executes with the schema's executor class;
then the errors are masked (server/masking.py). A schema that has any other
extension (a test's) keeps strawberry's runner, so that extension still sees
every operation.
"""

from __future__ import annotations

import strawberry
from graphql import ExecutionResult, GraphQLError
from strawberry.execution import optimized_is_awaitable

from resolvers.context import Context
from schema.root_field import execute_operation
from server.limits import served_alone
from server.masking import Origin, client_errors
from server.observability import record_operation
from server.ratelimit import over_limits
from subscriptions.documents import Prepared, Preparer


class SocketOperations:
    """Executes a prepared query or mutation for one socket's viewer."""

    def __init__(self, schema: strawberry.Schema, preparer: Preparer) -> None:
        self.schema = schema
        self.preparer = preparer
        self.direct = served_alone(schema)

    async def execute(self, prepared: Prepared, context: Context) -> ExecutionResult:
        """The operation's result, its errors masked for the client."""
        if not self.direct:
            served = await self.schema.execute(
                prepared.query,
                variable_values=prepared.variables,
                context_value=context,
                operation_name=prepared.operation_name,
            )
            return ExecutionResult(served.data, served.errors)
        name = prepared.operation.name.value if prepared.operation.name else None
        result = await self._run(prepared, context, name)
        if result.errors:
            origin = Origin(context.request_id, context.platform, name)
            result.errors = client_errors(result.errors, origin)
        return result

    async def _run(self, prepared: Prepared, context: Context, name: str | None) -> ExecutionResult:
        refused: GraphQLError | None = self.preparer.too_costly(prepared)
        record_operation(context, name)
        if refused is None:
            refused = await over_limits(context, prepared.document, name)
        if refused is not None:
            return ExecutionResult(None, [refused])
        if prepared.root is not None:
            return await prepared.root.execute(
                context,
                prepared.variables,
                prepared.operation_name,
                self.schema.execution_context_class,
                optimized_is_awaitable,
            )
        return await execute_operation(
            self.schema._schema,
            prepared.document,
            context,
            prepared.variables,
            prepared.operation_name,
            self.schema.execution_context_class,
            optimized_is_awaitable,
        )
