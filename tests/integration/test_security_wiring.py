"""Transport security and access control wired into the real collector server and relay.

One node serves its ring over mutual TLS; one relay, on an embedded chDB store, follows
it over mutual TLS, serves mutual TLS itself and checks tokens. Clients connect over
localhost with certificates from the deployment's CA (or another CA) and with tokens:
valid, revoked, expired, or scoped to one namespace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from relay_cluster import NAMESPACES, Node, relay_config, wait_for

from flowscope.cli import certs
from flowscope.cli.main import main
from flowscope.collector.server import Config as NodeConfig
from flowscope.collector.server import NodeServer, NodeStatus
from flowscope.common.auth import ClientAuth, TokenFile, authorized_channel
from flowscope.common.errors import InputError
from flowscope.common.tls import ClientTLS, ServerTLS, secure_channel
from flowscope.proto.aggregate import aggregate_pb2, aggregate_pb2_grpc
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc
from flowscope.proto.relay import relay_pb2
from flowscope.relay.follow import FollowConfig
from flowscope.relay.relay import Config, Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig

pytestmark = pytest.mark.store

FLOWS = 12  # make_flow cycles the namespaces: (shop->payments, payments->kube-system, ...)
SCOPE = "shop"
HOUR_NS = 3_600_000_000_000


@dataclass
class Deployment:
    pki: Path
    tokens: dict[str, str]
    node: Node
    relay: Relay
    emitted: list[flow_pb2.Flow]

    @property
    def relay_address(self) -> str:
        return f"localhost:{self.relay.port}"

    def tls(self, *, ca: str = "ca.crt", client: str = "client") -> ClientTLS:
        return ClientTLS(
            ca_files=(self.pki / ca,),
            cert_file=self.pki / f"{client}.crt",
            key_file=self.pki / f"{client}.key",
        )

    def channel(self, token: str | None = "admin", tls: ClientTLS | None = None) -> grpc.Channel:
        address = self.relay_address
        auth = ClientAuth.bearer(self.tokens[token]) if token else None
        return authorized_channel(
            secure_channel(address, tls or self.tls()), auth, server=address, tls=True
        )


class TlsNode(Node):
    """A relay_cluster Node whose server speaks mutual TLS."""

    server_tls: ServerTLS | None = None

    def start(self) -> None:
        status = NodeStatus(self.name, time.time_ns(), lambda: self.emitted)
        config = NodeConfig(listen_address=f"localhost:{self.port}", tls=self.server_tls, grace=0.2)
        self._server = NodeServer(config, self.ring, status)
        self._server.start()
        self.port = self._server.port

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    pytest.importorskip("chdb")
    directory = tmp_path_factory.mktemp("secure")
    pki = directory / "pki"
    certs.create(pki, ["relay", "node"], days=1)
    certs.create(pki / "other", ["relay"], days=1)  # another CA and its certificates
    token_file = TokenFile(directory / "tokens.json")
    tokens = {
        "admin": token_file.create("admin", None, None)[0],
        "shop": token_file.create("shop-team", [SCOPE], None)[0],
        "revoked": token_file.create("gone", None, None)[0],
        "expired": token_file.create(
            "old", None, 1_000_000_000, now=datetime.now(UTC) - timedelta(hours=1)
        )[0],
    }
    token_file.revoke(tokens["revoked"].split("_")[1])

    node = TlsNode("node-1")
    node.server_tls = ServerTLS(pki / "node.crt", pki / "node.key", (pki / "ca.crt",))
    node.start()
    base = relay_config([node])
    config = Config(
        node_name=base.node_name,
        peers=base.peers,
        server=ServerConfig(
            listen_address="localhost:0",
            grace=0.2,
            tls=ServerTLS(pki / "relay.crt", pki / "relay.key", (pki / "ca.crt",)),
            token_file=token_file.path,
        ),
        follow=FollowConfig(
            max_batch_latency=0.02,
            connect_timeout=2.0,
            backoff_min=0.05,
            backoff_max=0.2,
            tls=ClientTLS((pki / "ca.crt",), pki / "relay.crt", pki / "relay.key"),
        ),
        hub=base.hub,
    )
    store = StoreBackend.open(
        StoreConfig(
            dsn=f"chdb://{directory / 'db'}",
            database=f"secure_{uuid.uuid4().hex[:12]}",
            spool_dir=directory / "spool",
            batch_max_wait=0.1,
        )
    )
    relay = Relay(config, store=store)
    relay.start()
    try:
        wait_for(lambda: [n.state for n in relay.nodes()] == [relay_pb2.NODE_CONNECTED])
        emitted = node.emit(FLOWS, time_ns=time.time_ns() - 60_000_000_000)
        wait_for(lambda: relay.seen_flows() == FLOWS)
        store.flush()
        yield Deployment(pki, tokens, node, relay, emitted)
    finally:
        relay.stop()
        node.stop()
        store.close()


def _in_scope(flow: flow_pb2.Flow) -> bool:
    return SCOPE in (flow.source.namespace, flow.destination.namespace)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    assert isinstance(error, grpc.Call)
    return error.code()


def _status(channel: grpc.Channel) -> observer_pb2.ServerStatusResponse:
    with channel:
        answer: observer_pb2.ServerStatusResponse = observer_pb2_grpc.ObserverStub(
            channel
        ).ServerStatus(observer_pb2.ServerStatusRequest(), timeout=5)
        return answer


def _history(channel: grpc.Channel) -> list[flow_pb2.Flow]:
    with channel:
        request = observer_pb2.GetFlowsRequest(first=True, number=1000)
        responses = observer_pb2_grpc.ObserverStub(channel).GetFlows(request, timeout=10)
        return [r.flow for r in responses if r.HasField("flow")]


def test_the_relay_follows_a_node_over_mutual_tls(deployment: Deployment) -> None:
    flows = _history(deployment.channel())
    assert sorted(f.uuid for f in flows) == sorted(f.uuid for f in deployment.emitted)
    with deployment.channel() as channel:
        nodes = observer_pb2_grpc.ObserverStub(channel).GetNodes(
            observer_pb2.GetNodesRequest(), timeout=5
        )
    assert [(n.name, n.state, n.tls.enabled, n.num_flows) for n in nodes.nodes] == [
        ("node-1", relay_pb2.NODE_CONNECTED, True, FLOWS)
    ]


@pytest.mark.parametrize("server", ["relay", "node"])
def test_a_plaintext_client_is_refused(deployment: Deployment, server: str) -> None:
    port = deployment.relay.port if server == "relay" else deployment.node.port
    channel = grpc.insecure_channel(f"localhost:{port}")
    with pytest.raises(grpc.RpcError) as caught:
        _status(channel)
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("server", ["relay", "node"])
def test_a_client_certificate_from_another_ca_is_refused(
    deployment: Deployment, server: str
) -> None:
    # The server's certificate is checked with the right CA; the client's comes from another.
    tls = ClientTLS(
        ca_files=(deployment.pki / "ca.crt",),
        cert_file=deployment.pki / "other" / "client.crt",
        key_file=deployment.pki / "other" / "client.key",
    )
    address = deployment.relay_address if server == "relay" else deployment.node.address
    with pytest.raises(grpc.RpcError) as caught:
        _status(secure_channel(address, tls))
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


def test_the_server_certificate_is_checked_against_the_ca(deployment: Deployment) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _status(deployment.channel(tls=deployment.tls(ca="other/ca.crt")))
    assert _code(caught.value) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing credentials: send authorization: Bearer <token>"),
        ("revoked", "was revoked at"),
        ("expired", "expired at"),
    ],
)
def test_a_missing_revoked_or_expired_token_is_refused(
    deployment: Deployment, token: str | None, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _status(deployment.channel(token))
    assert _code(caught.value) is grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(caught.value, grpc.Call)
    assert message in (caught.value.details() or "")


def test_health_needs_no_token(deployment: Deployment) -> None:
    with deployment.channel(None) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="hubble.server.Observer"), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_scoped_token_sees_only_its_namespace_in_history(deployment: Deployment) -> None:
    flows = _history(deployment.channel("shop"))
    expected = sorted(f.uuid for f in deployment.emitted if _in_scope(f))
    assert sorted(f.uuid for f in flows) == expected
    assert len(expected) == FLOWS * 2 // 3


def test_a_scoped_token_sees_only_its_namespace_when_following(deployment: Deployment) -> None:
    request = observer_pb2.GetFlowsRequest(follow=True)
    with deployment.channel("shop") as channel:
        call = observer_pb2_grpc.ObserverStub(channel).GetFlows(request, timeout=20)
        # The live stream starts at the subscription; then the node emits.
        next(call)  # the node status event that opens every stream
        fresh = deployment.node.emit(6)
        expected = sorted(f.uuid for f in fresh if _in_scope(f))
        # The newest flow is in scope, and the stream is in time order: it comes last.
        assert fresh[-1].uuid in expected
        seen: list[flow_pb2.Flow] = []
        for response in call:
            if response.HasField("flow"):
                seen.append(response.flow)
                if response.flow.uuid == fresh[-1].uuid:
                    break
        call.cancel()
    assert all(_in_scope(flow) for flow in seen)
    assert sorted(f.uuid for f in seen) == expected
    deployment.emitted.extend(fresh)
    wait_for(lambda: deployment.relay.seen_flows() == len(deployment.emitted))


def test_a_scoped_token_sees_only_its_namespace_in_get_namespaces(
    deployment: Deployment,
) -> None:
    for token, expected in (("admin", sorted(NAMESPACES)), ("shop", [SCOPE])):
        with deployment.channel(token) as channel:
            answer = observer_pb2_grpc.ObserverStub(channel).GetNamespaces(
                observer_pb2.GetNamespacesRequest(), timeout=5
            )
        assert sorted(ns.namespace for ns in answer.namespaces) == expected


def _range() -> aggregate_pb2.AggregateRequest:
    now = time.time_ns()
    return aggregate_pb2.AggregateRequest(
        since_ns=now - HOUR_NS, until_ns=now + HOUR_NS, grouping=aggregate_pb2.NAMESPACE
    )


def test_a_scoped_token_sees_only_its_namespace_in_aggregates(deployment: Deployment) -> None:
    deployment.relay._store.flush()  # type: ignore[union-attr]
    visible = [f for f in deployment.emitted if _in_scope(f)]
    with deployment.channel("shop") as channel:
        stub = aggregate_pb2_grpc.AggregatesStub(channel)
        edges = stub.ServiceMap(_range(), timeout=10).edges
        talkers = stub.TopTalkers(aggregate_pb2.TopTalkersRequest(range=_range()), timeout=10)
        verdicts = stub.VerdictSummary(_range(), timeout=10).counts
    pairs: dict[tuple[str, str], int] = {}
    for flow in visible:
        key = (flow.source.namespace, flow.destination.namespace)
        pairs[key] = pairs.get(key, 0) + 1
    edge_counts: dict[tuple[str, str], int] = {}
    for edge in edges:
        key = (edge.source, edge.destination)
        edge_counts[key] = edge_counts.get(key, 0) + edge.flows
    assert edge_counts == pairs
    sources: dict[str, int] = {}
    for flow in visible:
        sources[flow.source.namespace] = sources.get(flow.source.namespace, 0) + 1
    assert {t.name: t.flows for t in talkers.talkers} == sources
    assert sum(count.flows for count in verdicts) == len(visible)


def test_a_scoped_token_cannot_ask_for_another_namespace(deployment: Deployment) -> None:
    request = observer_pb2.GetFlowsRequest(
        first=True,
        number=10,
        whitelist=[flow_pb2.FlowFilter(source_pod=["payments/"], destination_pod=["payments/"])],
    )
    with deployment.channel("shop") as channel, pytest.raises(grpc.RpcError) as caught:
        list(observer_pb2_grpc.ObserverStub(channel).GetFlows(request, timeout=5))
    assert _code(caught.value) is grpc.StatusCode.PERMISSION_DENIED


def test_observe_over_tls_with_a_token(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = deployment.pki
    argv = [
        "observe", "--server", deployment.relay_address, "--first", "1000", "-o", "jsonpb",
        "--tls", "--tls-ca-cert-files", str(pki / "ca.crt"),
        "--tls-client-cert-file", str(pki / "client.crt"),
        "--tls-client-key-file", str(pki / "client.key"),
        "--token", deployment.tokens["shop"],
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = [orjson.loads(line) for line in out.splitlines()]
    uuids = sorted(line["flow"]["uuid"] for line in lines if "flow" in line)
    assert uuids == sorted(f.uuid for f in deployment.emitted if _in_scope(f))


def test_observe_refuses_to_send_a_token_in_plain_text_to_another_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Refused before any connection is tried (.invalid names never resolve).
    argv = ["observe", "--server", "relay.invalid:4245", "--token", "fst_x", "--first", "1"]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        "refusing to send credentials to relay.invalid:4245 without TLS: add --tls "
        "(or use a tls:// address)\n"
    )


def test_servers_refuse_plain_text_beyond_loopback() -> None:
    with pytest.raises(InputError, match=r"refusing to listen on 0\.0\.0\.0:0 without TLS"):
        NodeServer(
            NodeConfig(listen_address="0.0.0.0:0"),
            Node("n").ring,
            NodeStatus("n", 0, lambda: 0),
        ).start()
