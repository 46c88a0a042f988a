"""What every resolver gets in `info.context`: the tenant, the viewer, stores, loaders."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from resolvers.errors import Unauthenticated

if TYPE_CHECKING:
    from datasources.registry import Loaders, Stores
    from datasources.users.sessions import RefreshTokenRecord
    from server.settings import Settings


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request, as proven by the access token."""

    user_id: int
    platform: str
    family_id: str


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    refresh_token: str
    expires_at: datetime
    user_id: int


class Authenticator(Protocol):
    """Passwords and tokens, implemented by server/auth.py (resolvers never sign)."""

    def hash_password(self, password: str) -> str: ...

    def verify_password(self, password_hash: str, password: str) -> bool: ...

    async def start_session(self, user_id: int, platform: str) -> IssuedSession: ...

    async def check_password(self, password_hash: str | None, password: str) -> bool:
        """Verify off the event loop; with no hash (unknown user) verify a dummy, so
        the time taken does not tell whether the user exists. False then."""
        ...

    def refresh_token_id(self, refresh_token: str) -> str:
        """The key a refresh token is stored under (a hash: the token is never stored)."""
        ...

    async def rotate_session(self, used: RefreshTokenRecord) -> IssuedSession | None:
        """The next access and refresh tokens of `used`'s family; None when `used`
        was rotated or revoked meanwhile (a concurrent use won)."""
        ...


@dataclass
class Context:
    platform: str
    viewer: Viewer | None
    settings: Settings
    stores: Stores
    loaders: Loaders
    auth: Authenticator
    request_id: str
    client_address: str = "unknown"
    request: Any = None
    response: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def viewer_id(self) -> int | None:
        return self.viewer.user_id if self.viewer else None

    def require_viewer(self) -> Viewer:
        if self.viewer is None:
            raise Unauthenticated()
        return self.viewer
