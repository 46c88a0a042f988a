"""Running the app under uvicorn so websockets end well, and write less often.

uvicorn's own shutdown closes open websockets with 1012 (service restart) before
the app's lifespan hears anything. `Server` first lets the realtime layer close
them with 1001 (going away), which clients take as "reconnect elsewhere", then
shuts down as usual. The websockets-sansio protocol is used: no task of its own
per connection (less memory per idle subscriber) and real backpressure (a send
waits while the transport is full, which is what bounds each socket's queue).

permessage-deflate is off: its state is per socket (tens of KB of zlib buffers
each) and each frame would be compressed once per subscriber, undoing "serialize
once, send the same bytes to all".

`FrameWriting` is that protocol with one addition, offered to the app as the
ASGI scope extension `TEXT_FRAMES`: text frames handed to it are framed here and
written at once, several in one `transport.write`. Through ASGI, each frame is a
`send` through every middleware, websockets' frame objects and a write (a system
call) of its own: a socket's answer to a mutation (`next` then `complete`) was
two, and together they were a seventh of the relay's CPU per message
(bench/messaging.py). The app uses it only while the socket is open and its
transport takes writes (`write_texts` says False otherwise, and the frames go the
ASGI way, which waits).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol

TEXT_FRAMES = "entativa.websocket.text_frames"
"""Scope extension: an object with `write_texts(texts) -> bool` (see `FrameWriting`)."""


class FrameWriting(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, also writing text frames for the app
    directly (see the module)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # upgraded: the app's task starts on the next turn
            scope["extensions"][TEXT_FRAMES] = self

    def write_texts(self, texts: Iterable[str]) -> bool:
        """Write `texts` as text frames, in one write; False, and nothing written,
        when they must go through ASGI's `send` instead (the peer is gone, the
        socket is not open, a compression extension, or the transport is full)."""
        conn: ServerProtocol = self.conn
        # A peer lost without a close frame leaves websockets' state open, but not
        # the transport; every close uvicorn sends takes the state out of OPEN.
        if (
            self.transport.is_closing()
            or conn.state is not State.OPEN
            or conn.extensions
            or not self.writable.is_set()
        ):
            return False
        parts = []
        for text in texts:
            data = text.encode()
            parts.append(text_frame_header(len(data)))
            parts.append(data)
        self.transport.write(b"".join(parts))
        return True


def text_frame_header(length: int) -> bytes:
    """A final, unmasked text frame's header (RFC 6455 section 5.2): a server's."""
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        realtime = getattr(getattr(self.config.app, "state", None), "realtime", None)
        if realtime is not None:
            await realtime.close()
        await super().shutdown(sockets)


def config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    options.setdefault("log_level", "warning")
    options.setdefault("ws", FrameWriting)
    options.setdefault("ws_per_message_deflate", False)
    return uvicorn.Config(app, host=host, port=port, **options)


def run(app: Any, host: str, port: int, **options: Any) -> None:
    Server(config(app, host, port, **options)).run()
