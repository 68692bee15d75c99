"""Cluster-wide identities end to end: collectors' allocation clients asking one relay on an
embedded chDB store, over gRPC on loopback (no kernel: the allocation client stands apart
from the datapath)."""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from relay_cluster import relay_config

from flowscope.collector.relay_identities import (
    IDENTITY_INIT,
    IdentityClient,
    RelayIdentities,
)
from flowscope.common.identity import label_key
from flowscope.proto.identity import identity_pb2, identity_pb2_grpc
from flowscope.relay.relay import Relay
from flowscope.relay.server import ServerConfig
from flowscope.relay.storage import StoreBackend
from flowscope.relay.store import StoreConfig

pytestmark = pytest.mark.store

WEB = ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")
DB = ("k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop")
API = ("k8s:app=api", "k8s:io.kubernetes.pod.namespace=prod")


class RelayProcess:
    """A relay on `port` over the store at `config`, started and stopped as a restart would."""

    def __init__(self, config: StoreConfig, port: int = 0) -> None:
        self.config = config
        self.port = port
        self._relay: Relay | None = None
        self._store: StoreBackend | None = None

    def start(self) -> None:
        self._store = StoreBackend.open(self.config)
        settings = dataclasses.replace(
            relay_config([]), server=ServerConfig(f"127.0.0.1:{self.port}", grace=0.2)
        )
        self._relay = Relay(settings, store=self._store)
        self._relay.start()
        self.port = self._relay.port

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def relay(store_config: StoreConfig) -> Iterator[RelayProcess]:
    process = RelayProcess(store_config)
    process.start()
    yield process
    process.stop()


def test_two_collectors_get_one_number_per_label_set(relay: RelayProcess) -> None:
    node1 = IdentityClient(relay.address, "node-1")
    node2 = IdentityClient(relay.address, "node-2")
    web, db = node1.allocate([WEB, DB], timeout=5)
    assert node2.allocate([DB, tuple(reversed(WEB)), API, WEB], timeout=5)[:2] == [db, web]
    api = node2.allocate([API], timeout=5)[0]
    assert len({web, db, api}) == 3
    assert all(256 <= number <= 65535 for number in (web, db, api))


def test_concurrent_collectors_never_share_or_split_a_number(relay: RelayProcess) -> None:
    label_sets = [(f"k8s:app=app-{n}", "k8s:io.kubernetes.pod.namespace=load")
                  for n in range(600)]
    answers: dict[str, dict[str, int]] = {}

    def collector(name: str) -> None:
        client = IdentityClient(relay.address, name)
        mine = random.Random(name).sample(label_sets, len(label_sets))
        numbers: dict[str, int] = {}
        for start in range(0, len(mine), 50):
            batch = mine[start:start + 50]
            numbers |= dict(zip(map(label_key, batch), client.allocate(batch, timeout=10),
                                strict=True))
        answers[name] = numbers

    threads = [threading.Thread(target=collector, args=(f"node-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["node-0"] == answers["node-1"] == answers["node-2"]
    assert len(set(answers["node-0"].values())) == len(label_sets)


def test_numbers_survive_a_relay_restart_on_the_same_store(store_config: StoreConfig) -> None:
    first = RelayProcess(store_config)
    first.start()
    try:
        before = IdentityClient(first.address, "node-1").allocate([WEB, DB, API], timeout=5)
    finally:
        first.stop()
    again = RelayProcess(store_config)
    again.start()
    try:
        # Asked in another order by another node: the stored numbers, not new ones.
        after = IdentityClient(again.address, "node-2").allocate([API, WEB, DB], timeout=5)
        assert after == [before[2], before[0], before[1]]
    finally:
        again.stop()
    # Each label set is stored once, with the number both relays gave.
    store = StoreBackend.open(store_config)
    try:
        rows = store.identities().load()
    finally:
        store.close()
    assert sorted(rows) == sorted(zip(map(label_key, (WEB, DB, API)), before, strict=True))


def test_malformed_label_sets_are_invalid_arguments(relay: RelayProcess) -> None:
    with grpc.insecure_channel(relay.address) as channel:
        stub = identity_pb2_grpc.IdentitiesStub(channel)
        for labels, message in (([], "a label set without labels has no identity"),
                                (["k8s:app=a,b"], "without commas")):
            request = identity_pb2.AllocateRequest(label_sets=[identity_pb2.LabelSet(
                labels=labels)])
            with pytest.raises(grpc.RpcError) as caught:
                stub.Allocate(request, timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in (caught.value.details() or "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_collector_waits_out_an_absent_relay_then_relabels(
    store_config: StoreConfig, tmp_path: Path
) -> None:
    relay = RelayProcess(store_config, free_port())
    identities = RelayIdentities(IdentityClient(relay.address, "node-1"),
                                 tmp_path / "ids.json", wait=0.2, backoff=(0.05, 0.2))
    identities.start()
    try:
        assert identities.identities_for([WEB]) == [IDENTITY_INIT]
        relay.start()
        deadline = time.monotonic() + 30
        while not (updates := identities.take_updates()):
            assert time.monotonic() < deadline, "the relay's number never came"
            time.sleep(0.05)
        web = IdentityClient(relay.address, "node-2").allocate([WEB], timeout=5)[0]
        assert updates == {label_key(WEB): web}
        assert identities.identities_for([WEB]) == [web]
    finally:
        identities.stop()
        relay.stop()
