"""Running the graph as separate processes: subgraphs, a monolith, a worker, and
`@apollo/gateway` (tests/interop/gateway.mjs) in front of the subgraphs.

Used by tests/test_federation.py (SQLite), tests/test_federation_stores.py (the real
stores) and bench/gateway.py. Every process writes its output to a log file under
the deployment's directory, quoted when it dies or never answers; `launch` stops
each process it started, by PID, however the block exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import services_required

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
# Started together, the processes share the cores while importing and building their
# schemas: on a loaded two-core machine the last one answers after half a minute.
START_SECONDS = 120.0


class DeploymentError(RuntimeError):
    """A process of the deployment exited or never became ready (with its output)."""


def missing_interop() -> str | None:
    """Why the gateway cannot run here (no node, or tests/interop not installed), or None."""
    if shutil.which("node") is None:
        return "node is not installed (Node.js 20+)"
    installed = INTEROP / "node_modules" / "@apollo"
    if not all((installed / package).is_dir() for package in ("composition", "gateway")):
        return "tests/interop/node_modules is missing (run `npm ci` in tests/interop)"
    return None


def interop_node() -> str:
    """The node binary, with tests/interop's packages installed; skip (fail in CI) otherwise."""
    missing = missing_interop()
    node = shutil.which("node")
    if missing is None and node is not None:
        return node
    reason = missing or "node is not installed"
    if services_required():
        pytest.fail(reason + " and ENTATIVA_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def entativa_command() -> list[str]:
    script = Path(sys.executable).with_name("entativa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start(name: str, command: list[str], url: str, env: Mapping[str, str], logs: Path) -> Service:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    return Service(name, process, url, log)


def _exited(service: Service) -> None:
    if service.process.poll() is not None:
        raise DeploymentError(
            f"{service.name} exited ({service.process.returncode}):\n{service.output()}"
        )


def wait_ready(service: Service, timeout: float = START_SECONDS) -> None:
    """Until `{ __typename }` answers; raises with the process output when it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _exited(service)
        try:
            response = httpx.post(service.url, json={"query": "{ __typename }"}, timeout=2)
            if response.status_code == 200 and response.json().get("data"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DeploymentError(f"{service.name} was not ready after {timeout}s:\n{service.output()}")


def wait_logged(service: Service, line: str, timeout: float = START_SECONDS) -> None:
    """Until the process printed `line` (a worker has no HTTP port to poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _exited(service)
        if line in service.log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise DeploymentError(
        f"{service.name} did not print {line!r} in {timeout}s:\n{service.output()}"
    )


def stop(services: Iterable[Service]) -> None:
    """SIGTERM each process, then SIGKILL the ones still there after 10 s."""
    started = [service for service in services if service.process.poll() is None]
    for service in started:
        service.process.send_signal(signal.SIGTERM)
    for service in started:
        try:
            service.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=10)


@dataclass
class Deployment:
    """URLs of a running deployment: `/{platform}/graphql` of each process, the gateway's `/`
    (its subgraph URLs name the platform, so one gateway serves one platform)."""

    gateway: str
    monolith: str | None
    subgraphs: dict[str, str]
    platform: str = "socialink"
    services: list[Service] = field(default_factory=list)
    ids: dict[str, Any] = field(default_factory=dict)  # what a test seeded, by name

    def logged_errors(self) -> str:
        """The ERROR lines every process logged (a masked error's cause, by request id)."""
        lines = [
            f"{service.name}: {line[:2000]}"
            for service in self.services
            for line in service.log.read_text(errors="replace").splitlines()
            if '"level": "ERROR"' in line or "Traceback" in line
        ]
        return "\n".join(lines) or "(no process logged an error)"

    def url(self, name: str, platform: str | None = None) -> str:
        """A subgraph's (or "monolith"'s) endpoint for `platform` (default: the gateway's)."""
        base = self.monolith if name == "monolith" else self.subgraphs[name]
        assert base is not None
        return base.replace(f"/{self.platform}/graphql", f"/{platform or self.platform}/graphql")


def serve_command(subgraph: str | None, port: int) -> list[str]:
    chosen = ["--subgraph", subgraph] if subgraph else []
    return [*entativa_command(), "serve", *chosen, "--no-demo", "--port", str(port)]


@contextmanager
def launch(
    node: str,
    env: Mapping[str, str],
    logs: Path,
    subgraphs: Iterable[str],
    *,
    monolith: bool = True,
    worker: bool = False,
    platform: str = "socialink",
) -> Iterator[Deployment]:
    """Each subgraph as an `entativa serve --subgraph NAME` process, optionally the
    monolith (`entativa serve`) and an `entativa worker` on the same settings, and the
    gateway composing the subgraphs (IntrospectAndCompose); stopped on exit.

    The database must already be migrated: every `serve` migrates on start, and
    several processes migrating one empty database at once would race.
    """
    services: list[Service] = []
    try:
        roles: list[tuple[str, str | None]] = [(name, name) for name in subgraphs]
        if monolith:
            roles.append(("monolith", None))
        for name, subgraph in roles:
            port = free_port()
            url = f"http://127.0.0.1:{port}/{platform}/graphql"
            services.append(start(name, serve_command(subgraph, port), url, env, logs))
        if worker:
            command = [*entativa_command(), "worker"]
            services.append(start("worker", command, "", env, logs))
        for service in services:
            if service.name == "worker":
                wait_logged(service, "[entativa worker] running")
            else:
                wait_ready(service)
        parts = {s.name: s.url for s in services if s.name not in ("monolith", "worker")}
        port = free_port()
        subgraph_args = [a for name, url in parts.items() for a in ("--subgraph", f"{name}={url}")]
        command = [node, str(INTEROP / "gateway.mjs"), "--port", str(port), *subgraph_args]
        gateway = start("gateway", command, f"http://127.0.0.1:{port}/", env, logs)
        services.append(gateway)
        wait_ready(gateway)
        whole = next((s.url for s in services if s.name == "monolith"), None)
        yield Deployment(gateway.url, whole, parts, platform, services)
    finally:
        stop(services)


def environment(**settings: str) -> dict[str, str]:
    """This process's environment with `ENTATIVA_<NAME>` set from `settings` (name=value)."""
    return {**os.environ, **{f"ENTATIVA_{k.upper()}": v for k, v in settings.items()}}
