"""`observe --input-file`: replay of a JSON-lines file through selectors and filters."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flowscope.cli.config import SETTINGS
from flowscope.cli.main import main
from flowscope.common import jsonlines
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2

BASE = 1_764_410_400  # 2025-11-29T10:00:00Z; flow n is at BASE + n seconds


def at(second: int) -> str:
    return f"2025-11-29T10:00:{second:02d}Z"


def flow_response(
    uuid: str,
    second: int,
    source: tuple[str, str, str],
    destination: tuple[str, str, str],
    verdict: int,
    ports: tuple[int, int],
    protocol: str = "TCP",
) -> observer_pb2.GetFlowsResponse:
    (src_ns, src_pod, src_ip), (dst_ns, dst_pod, dst_ip) = source, destination
    flow = flow_pb2.Flow(
        uuid=uuid,
        verdict=verdict,
        node_name="lab/node-1",
        IP=flow_pb2.IP(source=src_ip, destination=dst_ip, ipVersion=flow_pb2.IPv4),
        source=flow_pb2.Endpoint(namespace=src_ns, pod_name=src_pod),
        destination=flow_pb2.Endpoint(namespace=dst_ns, pod_name=dst_pod),
    )
    flow.time.FromSeconds(BASE + second)
    l4 = getattr(flow.l4, protocol)
    l4.source_port, l4.destination_port = ports
    return observer_pb2.GetFlowsResponse(flow=flow, node_name=flow.node_name, time=flow.time)


CART = ("shop", "cart-1", "10.0.0.1")
DB = ("shop", "db-1", "10.0.0.2")
DNS = ("kube-system", "coredns-1", "10.0.1.1")
WEB = ("default", "web-1", "10.0.2.1")
FORWARDED, DROPPED = flow_pb2.FORWARDED, flow_pb2.DROPPED

LOST = observer_pb2.GetFlowsResponse(
    lost_events=flow_pb2.LostEvent(source=flow_pb2.HUBBLE_RING_BUFFER, num_events_lost=7),
    node_name="lab/node-1",
)
LOST.time.FromSeconds(BASE + 2)
AGENT_EVENT = observer_pb2.GetAgentEventsResponse(
    agent_event=flow_pb2.AgentEvent(type=flow_pb2.AGENT_STARTED), node_name="lab/node-1"
)
AGENT_EVENT.time.FromSeconds(BASE + 1)

LINES = [
    jsonlines.dumps(flow_response("a", 0, CART, DB, FORWARDED, (40000, 5432))),
    jsonlines.dumps(flow_response("b", 1, DB, CART, FORWARDED, (5432, 40000))),
    jsonlines.dumps(AGENT_EVENT),
    jsonlines.dumps(flow_response("c", 2, DNS, WEB, DROPPED, (53, 33000), "UDP")),
    "this line is not JSON",
    jsonlines.dumps(LOST),
    "",
    jsonlines.dumps(flow_response("d", 3, WEB, DNS, FORWARDED, (33000, 53), "UDP")),
    jsonlines.dumps(flow_response("e", 4, WEB, CART, DROPPED, (41000, 8080))),
]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file or FLOWSCOPE_* variable of the machine leaks in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


def replay(
    capsys: pytest.CaptureFixture[str], path: Path, *flags: str
) -> tuple[int, list[str], str]:
    """Exit code, the uuid of each flow printed ("LOST" for lost events), stderr."""
    code = main(["observe", "--input-file", str(path), "-o", "jsonpb", *flags])
    out, err = capsys.readouterr()
    printed = []
    for line in out.splitlines():
        response = json.loads(line)
        printed.append(response["flow"]["uuid"] if "flow" in response else "LOST")
    return code, printed, err


CASES = {
    "everything, in file order": ([], ["a", "b", "c", "LOST", "d", "e"]),
    "--all": (["--all"], ["a", "b", "c", "LOST", "d", "e"]),
    "--follow ends at the end of the file": (["-f"], ["a", "b", "c", "LOST", "d", "e"]),
    "--last keeps lost events among the last flows": (["--last", "2"], ["LOST", "d", "e"]),
    "--last 1": (["--last", "1"], ["e"]),
    "--last more than there are": (["--last", "50"], ["a", "b", "c", "LOST", "d", "e"]),
    "--first": (["--first", "2"], ["a", "b"]),
    "--first stops at the Nth flow": (["--first", "3"], ["a", "b", "c"]),
    "--since and --until, inclusive": (
        ["--since", at(1), "--until", at(3)],
        ["b", "c", "LOST", "d"],
    ),
    "--since": (["--since", at(3)], ["d", "e"]),
    "--until": (["--until", at(2)], ["a", "b", "c", "LOST"]),
    "--first after --since": (["--first", "1", "--since", at(3)], ["d"]),
    "--verdict": (["--verdict", "DROPPED"], ["c", "LOST", "e"]),
    "--namespace matches either end": (["--namespace", "shop"], ["a", "b", "LOST", "e"]),
    "--from-namespace": (["--from-namespace", "shop"], ["a", "b", "LOST"]),
    "--not --namespace": (["--not", "--namespace", "kube-system"], ["a", "b", "LOST", "e"]),
    "--pod without namespace is in default": (["--pod", "web"], ["c", "LOST", "d", "e"]),
    "--ip and --port pair up by side": (
        ["--ip", "10.0.2.1", "--port", "33000"],
        ["c", "LOST", "d"],
    ),
    "--ip and --port on different sides match nothing": (
        ["--ip", "10.0.2.1", "--port", "53"],
        ["LOST"],
    ),
    "--last after filtering": (["--last", "1", "--verdict", "FORWARDED"], ["LOST", "d"]),
    "--last drops lost events before the kept flows": (
        ["--last", "1", "--from-namespace", "default"],
        ["e"],
    ),
    "--allowlist": (["--allowlist", '{"source_port":["53"]}'], ["c", "LOST"]),
}


@pytest.mark.parametrize(("flags", "expected"), CASES.values(), ids=CASES.keys())
def test_replay(
    capsys: pytest.CaptureFixture[str], flow_file: Path, flags: list[str], expected: list[str]
) -> None:
    code, printed, _ = replay(capsys, flow_file, *flags)
    assert (code, printed) == (0, expected)


def test_invalid_lines_are_skipped_with_a_warning(
    capsys: pytest.CaptureFixture[str], flow_file: Path
) -> None:
    code, printed, err = replay(capsys, flow_file, "--first", "1")
    assert (code, printed) == (0, ["a"])  # stopped before the bad line
    code, printed, err = replay(capsys, flow_file)
    assert code == 0
    assert err.startswith(f"warning: skipped line 5 of {flow_file}: not valid JSON: ")
    assert err.count("\n") == 1  # the blank line 7 is no record, and no warning


def test_silent_errors(capsys: pytest.CaptureFixture[str], flow_file: Path) -> None:
    assert replay(capsys, flow_file, "-s")[2] == ""


def test_field_mask_applies_to_replayed_flows(
    capsys: pytest.CaptureFixture[str], flow_file: Path
) -> None:
    code = main(
        [
            "observe",
            "--input-file",
            str(flow_file),
            "-o",
            "json",
            "-s",
            "--field-mask",
            "uuid,verdict",
            "--first",
            "1",
            "--verdict",
            "FORWARDED",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {
        "flow": {"uuid": "a", "verdict": "FORWARDED"},
        "node_name": "lab/node-1",
        "time": "2025-11-29T10:00:00Z",
    }


def test_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flow_file: Path
) -> None:
    with flow_file.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code = main(["observe", "--input-file", "-", "-o", "jsonpb", "--last", "1"])
    out, _ = capsys.readouterr()
    assert (code, json.loads(out)["flow"]["uuid"]) == (0, "e")


def test_agent_events_from_a_file(capsys: pytest.CaptureFixture[str], flow_file: Path) -> None:
    code = main(["observe", "agent-events", "--input-file", str(flow_file), "-o", "json", "-s"])
    out, _ = capsys.readouterr()
    assert (code, out) == (0, jsonlines.dumps(AGENT_EVENT) + "\n")


def test_observe_flows_is_observe(capsys: pytest.CaptureFixture[str], flow_file: Path) -> None:
    code = main(
        [
            "observe",
            "flows",
            "--input-file",
            str(flow_file),
            "-o",
            "json",
            "-s",
            "--to-port",
            "8080",
            "--since",
            at(3),
        ]
    )
    out, _ = capsys.readouterr()
    assert (code, [json.loads(line)["flow"]["uuid"] for line in out.splitlines()]) == (0, ["e"])


def test_flags_before_the_subcommand_name_count(
    capsys: pytest.CaptureFixture[str], flow_file: Path
) -> None:
    code = main(
        [
            "observe",
            "--to-port",
            "8080",
            "-o",
            "json",
            "flows",
            "--input-file",
            str(flow_file),
            "-s",
            "--since",
            at(3),
        ]
    )
    out, _ = capsys.readouterr()
    assert (code, [json.loads(line)["flow"]["uuid"] for line in out.splitlines()]) == (0, ["e"])


def test_filter_errors_name_the_flag(capsys: pytest.CaptureFixture[str], flow_file: Path) -> None:
    cases = [
        (["--to-port", "99999"], "invalid --to-port '99999': not a port"),
        (
            ["--from-ip", "10.0.0.0/33"],
            "invalid --from-ip '10.0.0.0/33': not an IP address or CIDR",
        ),
        (["--pod", "a/b/c"], "invalid --pod 'a/b/c': more than one '/'"),
        (
            ["--cel-expression", "true"],
            "invalid --cel-expression 'true': CEL expressions are not supported",
        ),
    ]
    for flags, message in cases:
        code, printed, err = replay(capsys, flow_file, *flags)
        assert (code, printed) == (1, [])
        assert err.startswith(message), err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, printed, err = replay(capsys, tmp_path / "nope.jsonl")
    assert (code, printed) == (1, [])
    assert err == f"cannot read --input-file {tmp_path / 'nope.jsonl'}: No such file or directory\n"
