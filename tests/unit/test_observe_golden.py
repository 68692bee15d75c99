"""`flowscope observe --input-file` end to end: flags, filters and printers together.

The flow log is the printers' golden stream written as JSON lines; each case
runs the real command line and compares stdout and stderr with a golden file
(FLOWSCOPE_UPDATE_GOLDEN=1 rewrites them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_printer_golden import agent_stream, flows_stream

from flowscope.cli.main import main
from flowscope.common import jsonlines

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "observe"
UPDATE = os.environ.get("FLOWSCOPE_UPDATE_GOLDEN") == "1"

CASES: dict[str, list[str]] = {
    "all": [],
    "policy-verdicts": ["-t", "policy-verdict"],
    "drops-dict": ["--verdict", "DROPPED", "-o", "dict"],
    "not-default-namespace": ["--not", "--namespace", "default", "--color", "always"],
    "pod-either-side-to-port": ["--pod", "default/netshoot-client", "--to-port", "53"],
    "pod-and-port-pair-by-side": ["--pod", "default/netshoot-client", "--port", "53"],
    "from-namespace-to-world": ["--from-namespace", "default", "--to-identity", "world-ipv6"],
    "l7-http-table": ["-t", "l7", "--protocol", "http", "-o", "table"],
    "dns-numeric-node": ["--protocol", "dns", "--numeric", "--print-node-name"],
    "ipv6-rfc3339": ["-6", "--time-format", "RFC3339Nano"],
    "tcp-syn-last-2": ["--tcp-flags", "SYN", "--last", "2"],
    "trace-reply-first-2": ["-t", "trace", "--first", "2"],
    "time-window-jsonpb": [
        "--since", "2026-03-21T11:18:51.010Z", "--until", "2026-03-21T11:18:51.020Z",
        "-o", "jsonpb",
    ],
    "field-mask-json": ["--verdict", "DROPPED", "-o", "json", "--field-mask", "uuid,verdict"],
    "policy-names": ["-t", "policy-verdict", "--print-policy-names", "--node-name", "*-b"],
    "agent-events": [],
}


@pytest.fixture(scope="module")
def flow_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("observe") / "flows.jsonl"
    lines = [jsonlines.dumps(response) for response in flows_stream()]
    lines.insert(3, "this line is not JSON")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def agent_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("observe") / "agent.jsonl"
    path.write_text("".join(jsonlines.dumps(r) + "\n" for r in agent_stream()), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_observe_golden(
    case: str, flow_log: Path, agent_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if case == "agent-events":
        argv = ["observe", "agent-events", "--input-file", str(agent_log)]
    else:
        argv = ["observe", "--input-file", str(flow_log), *CASES[case]]
    code = main(argv)
    captured = capsys.readouterr()
    got = f"$ flowscope {' '.join(argv)}\n=== exit {code} ===\n"
    got += f"=== stdout ===\n{captured.out}=== stderr ===\n{captured.err}"
    got = got.replace(str(flow_log), "flows.jsonl").replace(str(agent_log), "agent.jsonl")
    path = GOLDEN_DIR / f"{case}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8", newline="")
    with path.open(encoding="utf-8", newline="") as golden:
        assert got == golden.read()
