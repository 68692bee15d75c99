"""`flowscope status`, `list nodes`, `list namespaces` and `relay` without a server:
their formats from fixed answers, and the relay's flags."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from google.protobuf.wrappers_pb2 import UInt32Value
from grpc_health.v1 import health_pb2

from flowscope.cli import relay_cmd
from flowscope.cli.list_cmd import write_namespaces, write_nodes
from flowscope.cli.main import _Parser
from flowscope.cli.status import go_duration, write_status
from flowscope.common.errors import InputError
from flowscope.proto.observer import observer_pb2
from flowscope.proto.relay import relay_pb2
from flowscope.relay.peers import Peer

SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
STATUS = observer_pb2.ServerStatusResponse(
    num_flows=16048,
    max_flows=16380,
    seen_flows=500000,
    uptime_ns=3_723_000_000_000,
    num_connected_nodes=UInt32Value(value=3),
    num_unavailable_nodes=UInt32Value(value=12),
    unavailable_nodes=[f"node-{index}" for index in range(10)],
    version="0.1.0",
    flows_rate=32.014,
)


def test_status_compact() -> None:
    out = io.StringIO()
    write_status(out, "compact", "localhost:4245", SERVING, STATUS, None)
    assert out.getvalue() == (
        "Healthcheck (via localhost:4245): Ok\n"
        "Current/Max Flows: 16,048/16,380 (97.97%)\n"
        "Flows/s: 32.01\n"
        "Connected Nodes: 3/15\n"
        "Unavailable Nodes: 12\n"
        + "".join(f"  - node-{index}\n" for index in range(10))
        + "  - and 2 more...\n"
    )


def test_status_of_a_relay_without_maximum_names_its_stored_range() -> None:
    status = observer_pb2.ServerStatusResponse(
        num_flows=1234567, seen_flows=600, uptime_ns=60_000_000_000
    )
    out = io.StringIO()
    write_status(out, "compact", "relay:4245", SERVING, status, (0, 86_400_000_000_000))
    assert out.getvalue() == (
        "Healthcheck (via relay:4245): Ok\n"
        "Current/Max Flows: 1,234,567/0\n"
        "Flows/s: 10.00\n"
        "Stored Flows: 1970-01-01T00:00:00Z - 1970-01-02T00:00:00Z\n"
    )


def test_status_dict_and_table() -> None:
    out = io.StringIO()
    write_status(out, "dict", "x:1", SERVING, STATUS, None)
    assert out.getvalue() == (
        "          NUM FLOWS: 16,048\n"
        "          MAX FLOWS: 16,380\n"
        "         SEEN FLOWS: 500,000\n"
        "   FLOWS PER SECOND: 32.01\n"
        "             UPTIME: 1h2m3s\n"
        "NUM CONNECTED NODES: 3\n"
        " NUM UNAVAIL. NODES: 12\n"
        "            VERSION: 0.1.0\n"
    )
    out = io.StringIO()
    write_status(out, "table", "x:1", SERVING, STATUS, None)
    header, values = out.getvalue().splitlines()
    assert header.startswith("NUM FLOWS   MAX FLOWS   SEEN FLOWS   FLOWS PER SECOND   UPTIME")
    assert values.split() == ["16,048", "16,380", "500,000", "32.01", "1h2m3s", "3", "12", "0.1.0"]


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (53_900_000_000, "53s"), (87_000_000_000, "1m27s"), (7_384_000_000_000, "2h3m4s")],
)
def test_go_durations(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text


NODES = observer_pb2.GetNodesResponse(
    nodes=[
        observer_pb2.Node(
            name="kind-worker",
            version="0.1.0",
            address="10.0.0.2:4244",
            state=relay_pb2.NODE_CONNECTED,
            uptime_ns=53_000_000_000,
            num_flows=81,
            max_flows=4095,
            seen_flows=58,
        ),
        observer_pb2.Node(
            name="kind-control-plane", address="10.0.0.1:4244", state=relay_pb2.NODE_UNAVAILABLE
        ),
    ]
)


def test_list_nodes_table_and_wide() -> None:
    out = io.StringIO()
    write_nodes(out, "table", NODES)
    assert out.getvalue() == (
        "NAME                 STATUS        AGE   FLOWS/S   CURRENT/MAX-FLOWS\n"
        "kind-control-plane   Unavailable   N/A   N/A       N/A\n"
        "kind-worker          Connected     53s   1.09      81/4095 (  1.98%)\n"
    )
    out = io.StringIO()
    write_nodes(out, "wide", NODES)
    assert out.getvalue().splitlines()[2].split() == [
        "kind-worker", "Connected", "53s", "1.09", "81/4095", "(", "1.98%)", "0.1.0",
        "10.0.0.2:4244", "Disabled",
    ]  # fmt: skip


def test_list_namespaces_with_and_without_clusters() -> None:
    answer = observer_pb2.GetNamespacesResponse(
        namespaces=[observer_pb2.Namespace(namespace="default")]
    )
    out = io.StringIO()
    write_namespaces(out, "table", answer)
    assert out.getvalue() == "NAMESPACE\ndefault\n"
    answer.namespaces.add(cluster="prod", namespace="shop")
    out = io.StringIO()
    write_namespaces(out, "table", answer)
    assert out.getvalue() == "CLUSTER   NAMESPACE\n          default\nprod      shop\n"


def _relay_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="flowscope")
    relay_cmd.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["relay", *argv])


def test_relay_flags_make_its_config(tmp_path: Path) -> None:
    args = _relay_args(
        [
            "--peers", "n1=10.0.0.1:4244,10.0.0.2:4244",
            "--store", str(tmp_path / "store"),
            "--spool-dir", str(tmp_path / "spool"),
            "--listen-address", "0.0.0.0:4245",
            "--node-name", "relay-1",
        ]
    )  # fmt: skip
    config = relay_cmd.config_from(args)
    assert config.peers == (Peer("10.0.0.1:4244", "n1"), Peer("10.0.0.2:4244"))
    assert config.store.dsn == f"chdb://{tmp_path / 'store'}"
    assert config.store.spool_dir == tmp_path / "spool"
    assert config.server.listen_address == "0.0.0.0:4245"
    assert config.node_name == "relay-1"
    assert relay_cmd.store_dsn("http://default:@ch:8123/db") == "http://default:@ch:8123/db"


def test_relay_defaults() -> None:
    config = relay_cmd.config_from(_relay_args([]))
    assert config.server.listen_address == "localhost:4245"
    assert config.store.dsn == "chdb:///var/lib/flowscope/store"
    assert config.peers == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--peers", "nohost"], "invalid --peers entry 'nohost': expected HOST:PORT"),
        (["--listen-address", "4245"], "invalid --listen-address '4245': expected HOST:PORT"),
    ],
)
def test_bad_relay_flags_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as error:
        relay_cmd.config_from(_relay_args(argv))
    assert str(error.value) == message
