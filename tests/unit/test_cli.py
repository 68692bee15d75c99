"""The `flowscope` command: entry point, errors, version, the printer's options, the server.

Server tests run a real gRPC Observer on 127.0.0.1 that records the requests it
gets, or use a port where nothing listens.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

import flowscope
from flowscope.cli.config import SETTINGS
from flowscope.cli.main import main
from flowscope.cli.observe import command
from flowscope.cli.printers import DEFAULT_FIELD_MASK, PrinterOptions
from flowscope.common import jsonlines
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file or FLOWSCOPE_* variable of the machine leaks in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, f"flowscope {flowscope.__version__}\n", "")


@pytest.mark.parametrize("argv", [["--help"], ["observe", "--help"], ["config", "--help"]])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    assert "examples:\n  flowscope " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
        (["observe", "--las", "3"], "unrecognized arguments: --las"),
        (["observe", "bogus"], "argument COMMAND: invalid choice: 'bogus'"),
        (["observe", "--pod", "x", "agent-events"], "observe agent-events takes no filter flags"),
    ],
)
def test_errors_print_the_message_alone(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


# --- what reaches the printer ------------------------------------------------

FLOW = observer_pb2.GetFlowsResponse(
    flow=flow_pb2.Flow(uuid="u-1", verdict=flow_pb2.FORWARDED), node_name="lab/node-1"
)


class RecordingPrinter:
    def __init__(self, options: PrinterOptions, out: Any, err: Any) -> None:
        self.options, self.out, self.err = options, out, err
        self.responses: list[object] = []
        self.closed = False
        PRINTERS.append(self)

    def write_flows_response(self, response: observer_pb2.GetFlowsResponse) -> None:
        self.responses.append(response)

    def close(self) -> None:
        self.closed = True


PRINTERS: list[RecordingPrinter] = []


@pytest.fixture
def printers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingPrinter]]:
    monkeypatch.setattr(command, "make_printer", RecordingPrinter)
    yield PRINTERS
    PRINTERS.clear()


OPTIONS = [
    ([], PrinterOptions()),
    (
        [
            "-o",
            "tab",
            "--time-format",
            "RFC3339",
            "--print-node-name",
            "--print-policy-names",
            "--numeric",
            "--color",
            "always",
        ],
        PrinterOptions(
            output="table",
            time_format="RFC3339",
            node_name=True,
            policy_names=True,
            color=True,
            ip_translation=False,
        ),
    ),
    (
        ["-o", "JSON", "--ip-translation=false", "--color", "never"],
        PrinterOptions(output="json", ip_translation=False),
    ),
    (["-o", "jsonpb", "--ip-translation", "--color", "auto"], PrinterOptions(output="jsonpb")),
]


@pytest.mark.parametrize(("flags", "expected"), OPTIONS)
def test_printer_options(
    capsys: pytest.CaptureFixture[str],
    printers: list[RecordingPrinter],
    tmp_path: Path,
    flags: list[str],
    expected: PrinterOptions,
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(jsonlines.dumps(FLOW) + "\n")
    assert run(capsys, "observe", "--input-file", str(path), *flags) == (0, "", "")
    [printer] = printers
    assert printer.options == expected
    assert (printer.responses, printer.closed) == ([FLOW], True)


def test_silent_errors_reach_no_stream(
    capsys: pytest.CaptureFixture[str], printers: list[RecordingPrinter], tmp_path: Path
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text("not json\n")
    assert run(capsys, "observe", "--input-file", str(path), "-s") == (0, "", "")
    printers[0].err.write("node status")
    assert capsys.readouterr() == ("", "")


# --- the server ----------------------------------------------------------------


class RecordingObserver(observer_pb2_grpc.ObserverServicer):
    """Answers GetFlows with FLOW twice and keeps the requests."""

    def __init__(self) -> None:
        self.requests: list[observer_pb2.GetFlowsRequest] = []

    def GetFlows(  # gRPC's method names
        self, request: observer_pb2.GetFlowsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetFlowsResponse]:
        self.requests.append(request)
        if request.number == 13:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "13 is unlucky")
        yield FLOW
        yield FLOW

    def GetAgentEvents(
        self, request: observer_pb2.GetAgentEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[observer_pb2.GetAgentEventsResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetAgentEvents not yet implemented")
        yield observer_pb2.GetAgentEventsResponse()


@pytest.fixture
def server() -> Iterator[tuple[str, RecordingObserver]]:
    observer = RecordingObserver()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    observer_pb2_grpc.add_ObserverServicer_to_server(observer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield f"127.0.0.1:{port}", observer
    grpc_server.stop(None)


def request_json(request: observer_pb2.GetFlowsRequest) -> dict[str, object]:
    return jsonlines.to_dict(request)


REQUESTS = [
    ([], {"number": "20"}),
    (
        ["--last", "5", "--verdict", "DROPPED", "--not", "--from-pod", "shop/db"],
        {
            "number": "5",
            "whitelist": [{"verdict": ["DROPPED"]}],
            "blacklist": [{"source_pod": ["shop/db"]}],
        },
    ),
    (["--first", "3"], {"number": "3", "first": True}),
    (["--all"], {"number": "18446744073709551615"}),
    (
        ["--since", "2025-11-29T10:00:00Z", "--until", "2025-11-29T11:00:00.5Z"],
        {"since": "2025-11-29T10:00:00Z", "until": "2025-11-29T11:00:00.500Z"},
    ),
    (["--since", "2025-11-29T10:00:00Z", "--all"], {"since": "2025-11-29T10:00:00Z"}),
    (["-f", "--until", "2025-11-29T11:00:00Z"], {"follow": True}),
    (
        ["-o", "json", "--field-mask", "uuid,source.pod_name", "--field-mask", "verdict"],
        {"number": "20", "field_mask": "uuid,source.podName,verdict"},
    ),
    (
        ["--cel-expression", "_flow.verdict == 2"],
        {
            "number": "20",
            "whitelist": [{"experimental": {"cel_expression": ["_flow.verdict == 2"]}}],
        },
    ),
]


@pytest.mark.parametrize(("flags", "expected"), REQUESTS)
def test_requests_and_responses(
    capsys: pytest.CaptureFixture[str],
    server: tuple[str, RecordingObserver],
    flags: list[str],
    expected: dict[str, object],
) -> None:
    address, observer = server
    code, out, err = run(capsys, "observe", "--server", address, "-o", "json", *flags)
    assert (code, err) == (0, "")
    assert [request_json(request) for request in observer.requests] == [expected]
    assert out == 2 * (jsonlines.dumps(FLOW) + "\n")


def test_server_from_the_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: tuple[str, RecordingObserver],
) -> None:
    address, observer = server
    monkeypatch.setenv("FLOWSCOPE_SERVER", address)
    assert run(capsys, "observe", "-o", "json")[0] == 0
    assert len(observer.requests) == 1


def test_server_errors(
    capsys: pytest.CaptureFixture[str], server: tuple[str, RecordingObserver]
) -> None:
    address, _ = server
    assert run(capsys, "observe", "--server", address, "--last", "13") == (
        1,
        "",
        f"the flowscope server at {address} answered INVALID_ARGUMENT: 13 is unlucky\n",
    )
    assert run(capsys, "observe", "agent-events", "--server", address) == (
        1,
        "",
        f"the flowscope server at {address} answered UNIMPLEMENTED: GetAgentEvents not "
        "yet implemented\n",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_no_server(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("FLOWSCOPE_SERVER", "127.0.0.1:1")  # the flag wins
    started = time.monotonic()
    code, out, err = run(capsys, "observe", "--server", address)
    assert time.monotonic() - started < 4
    assert (code, out) == (1, "")
    assert err.startswith(f"cannot connect to the flowscope server at {address}: ")
    assert "Connection refused" in err


def test_default_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 4245)) == 0:
            pytest.skip("something listens on localhost:4245")
    started = time.monotonic()
    code, out, err = run(capsys, "observe", "--timeout", "2s")
    assert time.monotonic() - started < 4
    assert (code, out) == (1, "")
    assert err.startswith("cannot connect to the flowscope server at localhost:4245: ")


def test_connection_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = run(capsys, "observe", "--server", address, "--timeout", "300ms")
        elapsed = time.monotonic() - started
    assert result == (
        1,
        "",
        f"cannot connect to the flowscope server at {address}: no connection after 0.3s\n",
    )
    assert 0.3 <= elapsed < 3


def test_bad_filters_stop_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "observe", "--server", "127.0.0.1:1", "--to-port", "99999") == (
        1,
        "",
        "invalid --to-port '99999': not a port; expected a decimal number 0-65535\n",
    )


def test_tls_flags_checked_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--server", "tls://127.0.0.1:1", "--tls-client-cert-file", "client.crt"]
    assert run(capsys, "observe", *argv) == (
        1,
        "",
        "--tls-client-cert-file needs --tls-client-key-file\n",
    )


def test_json_output_of_real_printer_reads_back(
    capsys: pytest.CaptureFixture[str], server: tuple[str, RecordingObserver], tmp_path: Path
) -> None:
    address, _ = server
    saved = tmp_path / "saved.jsonl"
    saved.write_text(run(capsys, "observe", "--server", address, "-o", "jsonpb")[1])
    code, out, _ = run(capsys, "observe", "--input-file", str(saved), "-o", "json", "--last", "1")
    assert (code, [json.loads(line)["flow"]["uuid"] for line in out.splitlines()]) == (0, ["u-1"])


@pytest.mark.parametrize(
    ("flags", "mask"),
    [
        (["-o", "compact"], list(DEFAULT_FIELD_MASK)),
        (["-o", "dict", "--use-default-field-masks=false"], []),
        (["-o", "jsonpb"], []),
    ],
)
def test_default_field_mask_asked_of_a_server(
    capsys: pytest.CaptureFixture[str],
    server: tuple[str, RecordingObserver],
    flags: list[str],
    mask: list[str],
) -> None:
    address, observer = server
    assert run(capsys, "observe", "--server", address, *flags)[0] == 0
    [request] = observer.requests
    assert list(request.field_mask.paths) == mask
