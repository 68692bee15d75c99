"""`flowscope observe --server` end to end against a node server on loopback."""

from __future__ import annotations

import json
import threading

import pytest
from nodetools import NODE, StartServer, wait_until
from test_node_server import known_ring, make_flow

from flowscope.cli.main import main


def uuids(output: str) -> list[str]:
    return [json.loads(line)["flow"]["uuid"] for line in output.splitlines()]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--last", "3"], ["f7", "f8", "f9"]),
        (["--first", "2"], ["f0", "f1"]),
        (["--last", "2", "--verdict", "DROPPED"], ["f6", "f9"]),
        (["--last", "3", "--from-namespace", "payments"], ["f5", "f7", "f9"]),
        (["--last", "2", "--not", "--from-namespace", "payments"], ["f6", "f8"]),
    ],
)
def test_observe_selects_on_the_node(
    start_server: StartServer,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    expected: list[str],
) -> None:
    server, _ = start_server(known_ring())
    code = main(["observe", "--server", f"127.0.0.1:{server.port}", "-o", "jsonpb", *flags])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert uuids(out) == expected


def test_observe_with_a_field_mask(
    start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = start_server(known_ring())
    argv = ["observe", "--server", f"127.0.0.1:{server.port}", "--last", "1", "-o", "jsonpb"]
    assert main([*argv, "--field-mask", "uuid,source.pod_name"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["flow"] == {"uuid": "f9", "source": {"pod_name": "pod-9"}}
    assert line["node_name"] == NODE


def test_observe_follows_until_the_node_stops(
    start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = known_ring()
    server, _ = start_server(ring)
    address = f"127.0.0.1:{server.port}"
    codes: list[int] = []
    argv = ["observe", "--server", address, "--last", "1", "--follow", "-o", "jsonpb"]
    runner = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    runner.start()
    assert ring.waiting.wait(5)
    ring.append(make_flow(10))
    printed: list[str] = []

    def printed_f10() -> bool:
        printed.append(capsys.readouterr().out)
        return '"f10"' in "".join(printed)

    assert wait_until(printed_f10)
    server.stop()
    runner.join(5)
    out, err = capsys.readouterr()
    assert codes == [1]
    assert uuids("".join(printed) + out) == ["f9", "f10"]
    assert err == (
        f"lost the connection to the flowscope server at {address}: "
        "the node's server is shutting down\n"
    )
