"""Running the app under uvicorn so websockets end well.

uvicorn's own shutdown closes open websockets with 1012 (service restart) before
the app's lifespan hears anything. `Server` first lets the realtime layer close
them with 1001 (going away), which clients take as "reconnect elsewhere", then
shuts down as usual. The websockets-sansio protocol is used: no task of its own
per connection (less memory per idle subscriber) and real backpressure (a send
waits while the transport is full, which is what bounds each socket's queue).

permessage-deflate is off: its state is per socket (tens of KB of zlib buffers
each) and each frame would be compressed once per subscriber, undoing "serialize
once, send the same bytes to all".
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

WS_PROTOCOL = "websockets-sansio"


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        realtime = getattr(getattr(self.config.app, "state", None), "realtime", None)
        if realtime is not None:
            await realtime.close()
        await super().shutdown(sockets)


def config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    options.setdefault("log_level", "warning")
    options.setdefault("ws", WS_PROTOCOL)
    options.setdefault("ws_per_message_deflate", False)
    return uvicorn.Config(app, host=host, port=port, **options)


def run(app: Any, host: str, port: int, **options: Any) -> None:
    Server(config(app, host, port, **options)).run()
