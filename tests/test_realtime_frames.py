"""Text frames the app hands to our uvicorn protocol (subscriptions/serving.py
`FrameWriting`): well formed at every length, in order with what goes through
ASGI, written at once, and those handed over together in one write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import connect

from subscriptions.serving import TEXT_FRAMES, FrameWriting
from tests.realtime_support import counting, live_server


class FrameApp:
    """A websocket app that hands `texts` to the extension, then sends `last`
    through ASGI, then waits for the client to leave; it keeps the protocol and
    what the extension said."""

    def __init__(self, texts: list[str], last: str | None = None) -> None:
        self.texts, self.last = texts, last
        self.taken: list[bool] = []
        self.protocol: FrameWriting | None = None
        self.accepted = asyncio.Event()
        self.gone = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        self.protocol = scope["extensions"][TEXT_FRAMES]
        self.accepted.set()
        self.taken = [self.protocol.write_texts([text]) for text in self.texts]
        if self.last is not None:
            await send({"type": "websocket.send", "text": self.last})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        self.gone.set()


@asynccontextmanager
async def client_of(app: Any) -> AsyncIterator[Any]:
    async with live_server(app) as address:
        async with connect(f"ws://{address}/", max_size=None) as ws:
            yield ws


async def test_frames_of_every_length_arrive_whole_and_before_a_later_asgi_send() -> None:
    # 125, 126 and 65,536 bytes: the three header forms of RFC 6455 section 5.2.
    texts = ["a" * 125, "é" * 63, "z" * (1 << 16), '{"type":"ping"}']
    app = FrameApp(texts, last="through asgi")
    async with client_of(app) as ws:
        received = [await ws.recv() for _ in range(len(texts) + 1)]
    assert app.taken == [True] * len(texts)
    assert received == [*texts, "through asgi"]


async def test_frames_handed_over_together_go_out_at_once_in_one_write() -> None:
    app = FrameApp([])
    async with live_server(app) as address:
        async with connect(f"ws://{address}/") as ws:
            await app.accepted.wait()
            assert app.protocol is not None
            transport = counting(app.protocol)
            assert app.protocol.write_texts(["one", "two"])
            assert transport.writes == [b"\x81\x03one\x81\x03two"]  # before any await
            assert [await ws.recv(), await ws.recv()] == ["one", "two"]


async def test_a_full_transport_or_a_closing_socket_takes_no_frame() -> None:
    app = FrameApp([])
    async with live_server(app) as address:
        async with connect(f"ws://{address}/") as ws:
            await app.accepted.wait()
            protocol = app.protocol
            assert protocol is not None
            protocol.pause_writing()  # what the transport says when its buffer is full
            assert not protocol.write_texts(["waits its turn through ASGI"])
            protocol.resume_writing()
            assert protocol.write_texts(["taken"])
            assert await ws.recv() == "taken"
        assert not protocol.write_texts(["after the client closed"])


async def test_a_peer_gone_without_a_close_frame_takes_no_frame() -> None:
    """Its transport is closed: the frame goes the ASGI way, which says so (the
    socket's Connection drops its queue), instead of an error in whoever pushed."""
    app = FrameApp([])
    async with live_server(app) as address:
        ws = await connect(f"ws://{address}/")
        await app.accepted.wait()
        ws.transport.abort()  # no close frame: the server's websocket state stays OPEN
        await app.gone.wait()
        assert app.protocol is not None
        assert not app.protocol.write_texts(["to nobody"])
