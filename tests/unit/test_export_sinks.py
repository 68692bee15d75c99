"""The export's sinks and resume point: file rotation (sizes, backups, gzip), what the file
sink recovers from its file, the saved resume point, and RFC 5424 syslog framing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from flowscope.cli.exporters.records import Record, record_of
from flowscope.cli.exporters.rotating import FileSink, RotatingFile
from flowscope.cli.exporters.state import STATE_FILE, ResumePoint, StateFile
from flowscope.cli.exporters.syslog import SyslogConfig, SyslogSink, format_message
from flowscope.common.errors import InputError
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

# 2026-01-31T12:00:00Z
NOON_NS = 1_769_860_800 * 1_000_000_000


class Clock:
    """A clock that moves 1.5 s each time it is read."""

    def __init__(self) -> None:
        self.now = NOON_NS

    def __call__(self) -> int:
        self.now += 1_500_000_000
        return self.now


def flow_response(
    node: str, sequence: int, verdict: flow_pb2.Verdict.ValueType = flow_pb2.FORWARDED
) -> observer_pb2.GetFlowsResponse:
    flow = flow_pb2.Flow(
        node_name=node, node_sequence=sequence, uuid=f"u-{node}-{sequence}", verdict=verdict
    )
    flow.time.FromNanoseconds(NOON_NS + sequence * 1000)
    return observer_pb2.GetFlowsResponse(flow=flow, node_name=node, time=flow.time)


def record(node: str, sequence: int) -> Record:
    return record_of(flow_response(node, sequence))


def test_record_is_the_export_event_line() -> None:
    made = record("node-1", 7)
    assert made.line == (
        '{"flow":{"time":"2026-01-31T12:00:00.000007Z","verdict":"FORWARDED",'
        '"node_name":"node-1","uuid":"u-node-1-7","node_sequence":"7"},'
        '"node_name":"node-1","time":"2026-01-31T12:00:00.000007Z"}'
    )
    assert (made.kind, made.node, made.sequence, made.uuid) == ("flow", "node-1", 7, "u-node-1-7")
    lost = observer_pb2.GetFlowsResponse(
        lost_events=flow_pb2.LostEvent(source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=3),
        node_name="node-2",
    )
    assert record_of(lost).line == (
        '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},"node_name":"node-2"}'
    )
    assert (record_of(lost).kind, record_of(lost).sequence) == ("lost_events", 0)


def test_file_rotates_by_size_keeps_backups_and_compresses(tmp_path: Path) -> None:
    path = tmp_path / "flows.log"
    line = b"x" * 99 + b"\n"  # 100 bytes
    rotating = RotatingFile(path, 250, max_backups=2, compress=True, clock=Clock())
    assert rotating.open() == b""
    for _ in range(7):  # two lines fit a file: the 3rd, 5th and 7th writes rotate
        rotating.write(line)
    rotating.close()
    assert path.read_bytes() == line
    backups = sorted(p.name for p in tmp_path.iterdir() if p.name != "flows.log")
    # Rotations at 12:00:01.500, 12:00:03.000 and 12:00:04.500; the oldest is removed.
    assert backups == [
        "flows-2026-01-31T12-00-03.000.log.gz",
        "flows-2026-01-31T12-00-04.500.log.gz",
    ]
    for name in backups:
        assert gzip.decompress((tmp_path / name).read_bytes()) == line * 2


def test_file_without_compression_keeps_every_backup_with_zero(tmp_path: Path) -> None:
    path = tmp_path / "flows.json"
    rotating = RotatingFile(path, 10, max_backups=0, compress=False, clock=lambda: NOON_NS)
    rotating.open()
    for index in range(4):
        rotating.write(f"line-{index}\n".encode())  # 7 bytes: one per file
    rotating.close()
    # Rotations within one millisecond get the next millisecond's name.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "flows-2026-01-31T12-00-00.000.json",
        "flows-2026-01-31T12-00-00.001.json",
        "flows-2026-01-31T12-00-00.002.json",
        "flows.json",
    ]
    assert (tmp_path / "flows-2026-01-31T12-00-00.001.json").read_bytes() == b"line-1\n"
    assert path.read_bytes() == b"line-3\n"


def test_a_batch_is_never_split_and_may_exceed_the_size(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "f.log", 10, 5, False, clock=lambda: NOON_NS)
    rotating.open()
    rotating.write(b"0123456789abcdef\n")
    rotating.write(b"z\n")
    rotating.close()
    assert (tmp_path / "f.log").read_bytes() == b"z\n"
    assert (tmp_path / "f-2026-01-31T12-00-00.000.log").read_bytes() == b"0123456789abcdef\n"


def test_open_drops_a_partial_line_and_finishes_compression(tmp_path: Path) -> None:
    path = tmp_path / "flows.log"
    path.write_bytes(b"one\ntwo\nthr")
    left = tmp_path / "flows-2026-01-31T12-00-00.000.log"
    left.write_bytes(b"old\n")
    (tmp_path / "flows-2026-01-31T12-00-00.000.log.gz.tmp").write_bytes(b"half")
    rotating = RotatingFile(path, 1000, 5, True)
    assert rotating.open() == b"one\ntwo\n"
    rotating.write(b"four\n")
    rotating.close()
    assert path.read_bytes() == b"one\ntwo\nfour\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "flows-2026-01-31T12-00-00.000.log.gz",
        "flows.log",
    ]
    assert (
        gzip.decompress((tmp_path / "flows-2026-01-31T12-00-00.000.log.gz").read_bytes())
        == b"old\n"
    )


def test_file_sink_recovers_the_cursors_its_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "flows.log"
    sink = FileSink(RotatingFile(path, 1 << 20, 5, False))
    assert sink.recovered() == {}
    lost = record_of(
        observer_pb2.GetFlowsResponse(lost_events=flow_pb2.LostEvent(num_events_lost=1))
    )
    sink.write([record("node-1", 4), record("node-2", 9), lost, record("node-1", 5)])
    sink.close()
    with path.open("ab") as crashed:
        crashed.write(record("node-1", 6).line.encode()[:40])  # died mid-line
    again = FileSink(RotatingFile(path, 1 << 20, 5, False))
    assert again.recovered() == {"node-1": 5, "node-2": 9}
    again.close()
    assert len(path.read_bytes().splitlines()) == 4


def test_file_sink_refuses_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(InputError, match=r"notes.txt:1: not an export line"):
        FileSink(RotatingFile(path, 1 << 20, 5, False))


@pytest.mark.parametrize(
    ("size", "backups", "message"),
    [
        (0, 5, r"invalid --max-size-mb 0: expected more than 0"),
        (100, -1, r"invalid --max-backups -1: expected 0 or more"),
    ],
)
def test_rotation_limits_are_checked(tmp_path: Path, size: int, backups: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        RotatingFile(tmp_path / "f.log", size, backups, False)


def test_state_round_trip_and_damage(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state")
    assert state.load() is None
    point = ResumePoint(NOON_NS, {"node-1": 3})
    point.advance({"node-1": 2, "node-2": 8})
    state.save(point)
    assert state.load() == ResumePoint(NOON_NS, {"node-1": 3, "node-2": 8})
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [STATE_FILE]
    (tmp_path / "state" / STATE_FILE).write_text('{"since_ns": 1}')
    with pytest.raises(InputError, match=r"export-cursor.json is damaged .*remove it"):
        state.load()


def test_syslog_message_is_rfc5424_with_octet_counting() -> None:
    made = record_of(flow_response("node-1", 7, flow_pb2.DROPPED))
    framed = format_message(made, facility=16)
    length, _, message = framed.partition(b" ")
    assert int(length) == len(message)
    assert message == (
        b"<132>1 2026-01-31T12:00:00.000007Z node-1 flowscope - flow "
        b'[flowscope@32473 uuid="u-node-1-7" node="node-1" seq="7"] ' + made.line.encode()
    )
    status = observer_pb2.GetFlowsResponse(node_name='relay "a"]')
    status.node_status.message = "x"
    status.time.FromNanoseconds(NOON_NS)
    assert format_message(record_of(status), facility=1) == b"%d %s" % (
        len(
            message := b'<14>1 2026-01-31T12:00:00.000000Z relay"a"] flowscope - node_status '
            b'[flowscope@32473 node="relay \\"a\\"\\]"] ' + record_of(status).line.encode()
        ),
        message,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SyslogConfig("siem:514", facility="mail"), r"invalid --syslog-facility 'mail'"),
        (SyslogConfig("siem"), r"invalid address 'siem': expected HOST:PORT"),
        (
            SyslogConfig("siem:6514", tls=True, ca_file=Path("/nonexistent/ca.crt")),
            r"cannot load the syslog TLS files",
        ),
    ],
)
def test_syslog_configuration_errors(config: SyslogConfig, message: str) -> None:
    with pytest.raises(InputError, match=message):
        SyslogSink(config)
