"""Loopback stand-ins for push and mail providers: a settable clock, a test TLS
certificate for 127.0.0.1, and a small HTTP/2-over-TLS server (APNs speaks only
HTTP/2, which uvicorn does not serve)."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class FakeClock:
    """Seconds since the epoch, moved only by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LocalTLS:
    """A self-signed certificate for 127.0.0.1: a server context and a client
    context that trusts only it (real verification, no verify=False)."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def local_tls(directory: Path, alpn: list[str] | None = None) -> LocalTLS:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    if alpn:
        server.set_alpn_protocols(alpn)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return LocalTLS(server=server, client=client)


@dataclass
class H2Request:
    headers: dict[str, str]  # pseudo-headers (:method, :path…) included
    body: bytes
    alpn: str | None  # what TLS negotiated for the connection


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Http2Server:
    """HTTP/2 over TLS on a free 127.0.0.1 port; `handler` answers each request."""

    handler: Callable[[H2Request], Reply]
    tls: ssl.SSLContext
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def __aenter__(self) -> Http2Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        ssl_object = writer.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object else None
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        pending: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {str(k): str(v) for k, v in event.headers or ()}
                        pending[event.stream_id or 0] = (headers, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        pending[event.stream_id or 0][1].extend(event.data or b"")
                        conn.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id or 0
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        stream = event.stream_id or 0
                        headers, body = pending.pop(stream)
                        status, reply_headers, reply = self.handler(
                            H2Request(headers, bytes(body), alpn)
                        )
                        conn.send_headers(
                            stream,
                            [
                                (":status", str(status)),
                                *reply_headers.items(),
                                ("content-length", str(len(reply))),
                            ],
                            end_stream=not reply,
                        )
                        if reply:
                            conn.send_data(stream, reply, end_stream=True)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
