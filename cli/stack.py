"""The parts of a flowscope node, started and stopped together: what `collector`, `up` and
`demo` compose.

The collector runs in this process, as root: it needs the kernel. The relay (with its
embedded store) and the web UI run as child processes under an unprivileged system user, also
when root starts them: only the collector needs privileges (ARCHITECTURE.md, principle 7).
Each part is a context manager, so an ExitStack tears down whatever was started, in reverse
order, whatever fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowscope.collector.collector import Collector
from flowscope.collector.collector import Config as CollectorConfig
from flowscope.collector.server import Config as ServerConfig
from flowscope.collector.server import NodeServer, NodeStatus
from flowscope.common.auth import ClientAuth
from flowscope.common.errors import FlowscopeError
from flowscope.common.grpcserve import OBSERVER_HEALTH_SERVICE
from flowscope.common.metrics import Metrics, MetricsServer
from flowscope.common.tls import ClientTLS, ServerTLS
from flowscope.relay.peers import Announcer

SERVICE_USER: Final = "flowscope"
# How long a child gets to answer its health check, and to exit when asked.
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 15.0


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: the normal way to end a long-running command."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


@contextmanager
def running_collector(config: CollectorConfig) -> Iterator[Collector]:
    collector = Collector(config)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


@contextmanager
def node_server(
    collector: Collector, listen_address: str, tls: ServerTLS | None = None
) -> Iterator[NodeServer]:
    """The node's Observer API and batched stream over the collector's ring."""
    server = NodeServer(
        ServerConfig(listen_address=listen_address, tls=tls),
        collector.ring,
        NodeStatus(
            node_name=collector.config.node_name,
            started_ns=collector.started_ns,
            seen_flows=lambda: collector.stats().flows,
        ),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def metrics_served(address: str, metrics: Metrics) -> Iterator[None]:
    """`metrics` served at http://ADDRESS/metrics; nothing when the address is empty."""
    if not address:
        yield
        return
    server = MetricsServer(address, metrics.registry)
    server.start()
    try:
        yield
    finally:
        server.stop()


@contextmanager
def announced(
    relay_address: str,
    node_name: str,
    address: str,
    tls: ClientTLS | None = None,
    auth: ClientAuth | None = None,
) -> Iterator[None]:
    """This node announced to the relay, and withdrawn at the end."""
    announcer = Announcer(relay_address, node_name, address, tls=tls, auth=auth)
    announcer.start()
    try:
        yield
    finally:
        announcer.stop()


def service_user(name: str = SERVICE_USER) -> tuple[int, int]:
    """(uid, gid) of the unprivileged system user the relay and UI run as; created if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise FlowscopeError(f"no user {name!r} and no useradd to create it") from None
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def owned_directory(path: Path, uid: int, gid: int) -> Path:
    """`path` created if needed and owned by uid:gid (the unprivileged user's data)."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in (path, *path.rglob("*")):
        if entry.stat().st_uid != uid:
            os.chown(entry, uid, gid, follow_symlinks=False)
    return path


Ready = Callable[[], bool]


@contextmanager
def unprivileged_child(
    name: str, argv: Sequence[str], ready: Ready, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`flowscope ARGV...` as a child process, dropped to the service user when we are root.

    Waits until `ready()` says the child serves. Its output goes to `log`. At the end it gets
    SIGTERM, then SIGKILL if it does not exit in time.
    """
    command = [sys.executable, "-m", "flowscope.cli.main", *argv]
    user: dict[str, object] = {}
    if os.geteuid() == 0:
        uid, gid = service_user()
        user = {"user": uid, "group": gid, "extra_groups": []}
        log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd="/", **user,  # type: ignore[call-overload]
        )
    try:
        _wait_ready(name, child, ready, log)
        yield child
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_ready(name: str, child: subprocess.Popen[bytes], ready: Ready, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if child.poll() is not None:
            raise FlowscopeError(
                f"the {name} exited with code {child.returncode} before serving; its log: {log}"
            )
        if time.monotonic() > deadline:
            raise FlowscopeError(
                f"the {name} did not serve within {START_TIMEOUT:.0f} s; its log: {log}"
            )
        time.sleep(0.2)


def grpc_serving(address: str) -> Ready:
    """Whether the gRPC server at `address` says SERVING for the Observer service."""

    def check() -> bool:
        with grpc.insecure_channel(address) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=OBSERVER_HEALTH_SERVICE), timeout=1.0
                )
            except grpc.RpcError:
                return False
        serving: bool = answer.status == health_pb2.HealthCheckResponse.SERVING
        return serving

    return check


def http_serving(url: str) -> Ready:
    """Whether `url` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    return check


@contextmanager
def relay_child(
    listen_address: str,
    store: Path,
    peers: str,
    node_name: str,
    log: Path,
    metrics_address: str = "",
    flags: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """The relay with its embedded store at `store`, following `peers`, unprivileged;
    its metrics on `metrics_address` ("" for none); `flags`: more of `flowscope relay`'s
    flags (its limits)."""
    if os.geteuid() == 0:
        owned_directory(store, *service_user())
    argv = [
        "relay", "--listen-address", listen_address, "--store", str(store),
        "--spool-dir", str(store / "spool"), "--peers", peers, "--node-name", node_name,
        "--metrics-address", metrics_address, *flags,
    ]
    with unprivileged_child("relay", argv, grpc_serving(listen_address), log) as child:
        yield child


@contextmanager
def ui_child(listen_address: str, relay_address: str, log: Path) -> Iterator[str]:
    """The web UI, talking to the relay, unprivileged; yields its URL."""
    url = f"http://{listen_address}/"
    argv = ["ui", "--listen-address", listen_address, "--server", relay_address]
    with unprivileged_child("web UI", argv, http_serving(url + "openapi.json"), log):
        yield url
