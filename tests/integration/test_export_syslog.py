"""`flowscope export` to syslog over TLS: a test receiver (certificates from `flowscope
certs`) gets RFC 5424 messages framed by octet counting, every flow at least once even when
it drops the connection, each carrying its flow's uuid."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from export_tools import ExporterThread
from relay_cluster import Node, start_relay, wait_for

from flowscope.cli import certs
from flowscope.cli.exporters.syslog import SyslogConfig, SyslogSink
from flowscope.proto.flow import flow_pb2
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig

pytestmark = pytest.mark.store

MESSAGE = re.compile(
    rb"<(?P<pri>\d+)>1 (?P<time>\S+) (?P<host>\S+) flowscope - (?P<msgid>\S+) "
    rb'(?P<sd>\[flowscope@32473(?: [a-z]+="(?:[^"\\\]]|\\.)*")+\]|-) (?P<msg>\{.*\})\Z',
    re.DOTALL,
)


class Receiver:
    """A TLS syslog receiver on loopback that splits octet-counted frames; it drops its
    first connection after `drop_after` messages, unread data and all."""

    def __init__(self, directory: Path, drop_after: int) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(directory / "127.0.0.1.crt", directory / "127.0.0.1.key")
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.messages: list[bytes] = []
        self.connections = 0
        self._drop_after = drop_after
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self._drop_after if self.connections == 1 else None
            threading.Thread(target=self._read, args=(raw, limit), daemon=True).start()

    def _read(self, raw: socket.socket, limit: int | None) -> None:
        with self._context.wrap_socket(raw, server_side=True) as connection:
            buffer = b""
            while limit is None or len(self.messages) < limit:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while True:
                    length, space, rest = buffer.partition(b" ")
                    if not space or len(rest) < int(length):
                        break
                    self.messages.append(rest[: int(length)])
                    buffer = rest[int(length) :]

    def close(self) -> None:
        self._listener.close()


def test_syslog_over_tls_gets_every_flow_at_least_once(nodes: list[Node], tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    certs.create(tmp_path / "certs", ["127.0.0.1"], 1)
    receiver = Receiver(tmp_path / "certs", drop_after=150)
    store = StoreBackend.open(
        StoreConfig(
            dsn=f"chdb://{tmp_path / 'engine'}",
            database=f"syslog_{uuid.uuid4().hex[:12]}",
            spool_dir=tmp_path / "spool",
            batch_max_wait=0.2,
        )
    )
    relay = start_relay(nodes, store)
    sink = SyslogSink(
        SyslogConfig(f"127.0.0.1:{receiver.port}", tls=True, ca_file=tmp_path / "certs" / "ca.crt")
    )
    sent: list[flow_pb2.Flow] = []
    try:
        exporter = ExporterThread(f"127.0.0.1:{relay.port}", sink, tmp_path / "state", 1)
        for _ in range(30):
            for node in nodes:
                sent += node.emit(10)
            time.sleep(0.02)
        wanted = {flow.uuid for flow in sent}

        def received() -> set[str]:
            return {
                m.group("sd").split(b'uuid="')[1].split(b'"')[0].decode()
                for m in map(MESSAGE.match, list(receiver.messages))
                if m is not None and m.group("msgid") == b"flow"
            }

        wait_for(lambda: wanted <= received(), timeout=30)
        exporter.stop()
    finally:
        relay.stop()
        store.close()
        receiver.close()
    assert receiver.connections >= 2
    by_uuid = {flow.uuid: flow for flow in sent}
    for message in receiver.messages:
        match = MESSAGE.match(message)
        assert match is not None, message
        event = orjson.loads(match.group("msg"))
        if match.group("msgid") != b"flow":
            assert match.group("msgid") == b"node_status"
            continue
        flow = by_uuid[event["flow"]["uuid"]]
        dropped = flow.verdict == flow_pb2.DROPPED
        assert int(match.group("pri")) == 16 * 8 + (4 if dropped else 6)
        assert match.group("host").decode() == flow.node_name
        assert match.group("sd").decode() == (
            f'[flowscope@32473 uuid="{flow.uuid}" node="{flow.node_name}" '
            f'seq="{flow.node_sequence}"]'
        )
        assert event["node_name"] == flow.node_name
        assert event["flow"]["node_sequence"] == str(flow.node_sequence)
