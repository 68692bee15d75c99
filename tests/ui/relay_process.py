"""A relay with a store of known flows and one node to follow, for the UI's tests
and benchmark, run as its own process (chDB holds one engine per process).

    python tests/ui/relay_process.py DIR [--scenario] [--no-node]

It opens the store in DIR (relay/store's Store), writes the scenario's flows
(tests/ui/scenario.py) with --scenario, starts a node server over a FlowRing
and a Relay following it, then prints one JSON line with their addresses:
{"relay": "127.0.0.1:PORT", "node": "127.0.0.1:PORT"}. Each line it reads from
stdin is a Hubble JSON line whose flow it appends to the node's ring (and it
answers "ok"); at the end of stdin it stops.

The relay serves flowscope.aggregate.Aggregates beside observer.Observer on its
one port.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scenario  # noqa: E402

from flowscope.collector.ring import FlowRing  # noqa: E402
from flowscope.collector.server import Config as NodeConfig  # noqa: E402
from flowscope.collector.server import NodeServer, NodeStatus  # noqa: E402
from flowscope.common import jsonlines  # noqa: E402
from flowscope.relay.follow import FollowConfig  # noqa: E402
from flowscope.relay.peers import Peer  # noqa: E402
from flowscope.relay.relay import Config, Relay  # noqa: E402
from flowscope.relay.server import ServerConfig  # noqa: E402
from flowscope.relay.storage import StoreBackend  # noqa: E402
from flowscope.relay.store import Store, StoreConfig  # noqa: E402

LONG = timedelta(days=3650)


def open_store(directory: Path) -> Store:
    store = Store(
        StoreConfig(
            dsn=f"chdb://{directory / 'db'}",
            spool_dir=directory / "spool",
            raw_ttl=LONG,
            minute_ttl=LONG,
            hour_ttl=LONG,
            batch_max_wait=0.1,
        )
    )
    store.start()
    return store


def start_relay(store: Store, peers: tuple[Peer, ...]) -> Relay:
    relay = Relay(
        Config(
            node_name="test-relay",
            peers=peers,
            store=store.config,
            server=ServerConfig(listen_address="127.0.0.1:0", grace=0.2),
            follow=FollowConfig(),
        ),
        store=StoreBackend(store),
    )
    relay.start()
    return relay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--scenario", action="store_true")
    parser.add_argument("--no-node", action="store_true")
    args = parser.parse_args()
    store = open_store(args.directory)
    if args.scenario:
        store.write(scenario.history(time.time_ns()))
        store.drain()
    ring = FlowRing(4096)
    node: NodeServer | None = None
    peers: tuple[Peer, ...] = ()
    if not args.no_node:
        node = NodeServer(
            NodeConfig(listen_address="127.0.0.1:0", grace=0.2),
            ring,
            NodeStatus(
                node_name=scenario.LIVE_NODE, started_ns=time.time_ns(), seen_flows=ring.__len__
            ),
        )
        node.start()
        peers = (Peer(f"127.0.0.1:{node.port}", scenario.LIVE_NODE),)
    relay = start_relay(store, peers)
    ports = {"relay": f"127.0.0.1:{relay.port}", "node": f"127.0.0.1:{node.port}" if node else ""}
    print(json.dumps(ports), flush=True)
    stop: list[Callable[[], None]] = [relay.stop, store.stop]
    if node is not None:
        stop.insert(1, node.stop)
    try:
        for line in sys.stdin:
            if line.strip():
                response = jsonlines.parse_line(line)
                ring.append(response.flow)  # type: ignore[union-attr]
                print("ok", flush=True)
    finally:
        for step in stop:
            step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
