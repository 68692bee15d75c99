"""The syslog sink: RFC 5424 messages over TCP, optionally TLS, framed by octet counting
(RFC 6587, as RFC 5425 requires for TLS): `LEN SP <PRI>1 TIMESTAMP HOST APP - MSGID SD MSG`.

MSG is the ExportEvent JSON line; HOST is the flow's node; MSGID the kind of event (flow,
lost_events, node_status); the structured data `[flowscope@32473 uuid="..." node="..."
seq="..."]` carries the flow's uuid so a receiver can drop repeats: delivery is at least
once. TCP does not say what the receiver read, so on every new connection the sink first
sends again the last records it sent on the previous one (10,000 by default), then the
batch whose sending failed. Dropped flows go out
with severity warning, everything else as informational.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from flowscope.cli.exporters.records import Record
from flowscope.common.errors import InputError
from flowscope.common.tls import split_host_port

# The facilities a flow log plausibly goes to, by their RFC 5424 numbers.
FACILITIES: Final = {
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "authpriv": 10,
    **{f"local{index}": 16 + index for index in range(8)},
}
SEVERITY_WARNING: Final = 4
SEVERITY_INFO: Final = 6
APP_NAME: Final = "flowscope"
# SD-ID of flowscope's structured data; 32473 is the enterprise number RFC 5612 sets aside
# for examples and documentation.
SD_ID: Final = "flowscope@32473"
CONNECT_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class SyslogConfig:
    """address: HOST:PORT of the receiver; tls: speak TLS, checking the receiver against
    ca_file (the system's CAs when None) and server_name (HOST when None); cert_file and
    key_file: a client certificate for receivers that ask for one; resend_records: how
    many of the records sent last go again on a new connection."""

    address: str
    facility: str = "local0"
    tls: bool = False
    ca_file: Path | None = None
    server_name: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    resend_records: int = 10_000


def _sd_value(value: str) -> str:
    """A structured-data parameter value: '"', '\\' and ']' escaped (RFC 5424, 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    """A header field: printable ASCII without spaces, at most `limit` long; "-" when empty."""
    cleaned = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return cleaned or "-"


def _timestamp(nanos: int) -> str:
    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{rest // 1000:06d}Z"


def format_message(record: Record, facility: int) -> bytes:
    """One record as an RFC 5424 message, framed by octet counting."""
    severity = SEVERITY_WARNING if record.dropped else SEVERITY_INFO
    parameters = [("uuid", record.uuid), ("node", record.node)]
    if record.sequence:
        parameters.append(("seq", str(record.sequence)))
    data = " ".join(f'{name}="{_sd_value(value)}"' for name, value in parameters if value)
    structured = f"[{SD_ID} {data}]" if data else "-"
    message = (
        f"<{facility * 8 + severity}>1 {_timestamp(record.time_ns)} "
        f"{_header_field(record.node, 255)} {APP_NAME} - {_header_field(record.kind, 32)} "
        f"{structured} {record.line}"
    ).encode()
    return b"%d %s" % (len(message), message)


class SyslogSink:
    """Sends records to a syslog receiver; reconnects and sends a failed batch again."""

    def __init__(self, config: SyslogConfig) -> None:
        if config.facility not in FACILITIES:
            raise InputError(
                f"invalid --syslog-facility {config.facility!r}: expected one of "
                f"{', '.join(FACILITIES)}"
            )
        split_host_port(config.address)  # InputError for a malformed address, at once
        self._config = config
        self._facility = FACILITIES[config.facility]
        self._context = tls_context(config) if config.tls else None
        self._socket: socket.socket | None = None
        # The batches sent last (payload, records), up to config.resend_records records.
        self._recent: deque[tuple[bytes, int]] = deque()
        self._recent_records = 0

    def recovered(self) -> dict[str, int]:
        return {}

    def write(self, records: Sequence[Record]) -> None:
        payload = b"".join(format_message(record, self._facility) for record in records)
        if self._socket is not None and _closed_by_peer(self._socket):
            self.close()
        try:
            if self._socket is None:
                self._socket = open_connection(self._config, self._context)
                # TCP cannot tell what the old connection's receiver read: send its last
                # batches again (the receiver drops repeats by uuid).
                for sent, _ in self._recent:
                    self._socket.sendall(sent)
            self._socket.sendall(payload)
        except OSError:
            self.close()
            raise
        self._remember(payload, len(records))

    def _remember(self, payload: bytes, count: int) -> None:
        self._recent.append((payload, count))
        self._recent_records += count
        while self._recent_records > self._config.resend_records and len(self._recent) > 1:
            self._recent_records -= self._recent.popleft()[1]

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _closed_by_peer(connection: socket.socket) -> bool:
    """Whether the receiver closed the connection. A syslog receiver sends no data, so what
    can be read is its end, or TLS records of its own (session tickets), read and ignored."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        timeout = connection.gettimeout()
        connection.setblocking(False)
        try:
            return connection.recv(4096) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        finally:
            connection.settimeout(timeout)
    except (OSError, ValueError):
        return True


def tls_context(config: SyslogConfig) -> ssl.SSLContext:
    """The client TLS context for the receiver; InputError naming an unreadable file."""
    try:
        context = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file is not None else None
        )
        if config.cert_file is not None:
            context.load_cert_chain(
                str(config.cert_file),
                str(config.key_file) if config.key_file is not None else None,
            )
    except (OSError, ssl.SSLError) as err:
        raise InputError(f"cannot load the syslog TLS files: {err}") from None
    return context


def open_connection(config: SyslogConfig, context: ssl.SSLContext | None) -> socket.socket:
    """A connected socket to the receiver, in TLS with `context`; OSError when refused."""
    host, port = split_host_port(config.address)
    raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    if context is None:
        return raw
    try:
        return context.wrap_socket(raw, server_hostname=config.server_name or host)
    except OSError:
        raw.close()
        raise
