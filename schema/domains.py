"""Which root fields each domain (subgraph) contributes. Add a domain here, once."""
from __future__ import annotations

from dataclasses import dataclass, field

from schema.media.queries import MediaQuery
from schema.users.mutations.auth import AuthMutation
from schema.users.queries import UsersQuery


@dataclass(frozen=True)
class Domain:
    name: str
    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()
    subscriptions: tuple[type, ...] = ()
    extra_types: tuple[type, ...] = field(default=())


DOMAINS: dict[str, Domain] = {
    "users": Domain("users", queries=(UsersQuery,), mutations=(AuthMutation,)),
    "media": Domain("media", queries=(MediaQuery,)),
}
