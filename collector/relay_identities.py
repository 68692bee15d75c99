"""The collector's identities when a relay allocates them cluster-wide (--relay).

    client = IdentityClient("relay:4245", node_name="node-1", tls=None, auth=None)
    client.allocate([labels, ...], timeout=2.0)     # the relay's numbers, or RelayUnavailable

    identities = RelayIdentities(client, state_path)
    identities.start()                    # asks again in the background while the relay is away
    identities.identities_for([labels])   # what the endpoint registry calls
    identities.take_updates()             # {label set key: number} that changed since asked
    identities.stop()

What a platform engineer can expect of a collector with --relay:

* A label set it has seen before keeps the number the relay gave it (kept in the identity
  state file, marked as the relay's), also while the relay is down; the relay confirms every
  such number once it answers, and a different answer replaces it.
* A new label set waits for the relay's number (up to `wait` seconds). If the relay does not
  answer in time, its endpoints get the reserved identity `init` (5), never a number of this
  node's own: a local number could mean another label set on another node. The collector asks
  again with backoff and, when the number arrives, re-labels those endpoints: the ipcache
  entries, the policies and an IPCACHE_UPSERTED agent event per address (collector.py). While
  the relay stays away, endpoints with new label sets are not waited for again.
* Numbers of a state file a local allocator wrote are not used: the relay decides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

import grpc

from flowscope.collector.identity import RELAY, read_state, write_state
from flowscope.common.auth import ClientAuth, authorized_channel
from flowscope.common.errors import FlowscopeError
from flowscope.common.identity import is_cluster_identity, label_key
from flowscope.common.tls import ClientTLS, dial
from flowscope.common.vocab import RESERVED_IDENTITY_NUMBERS
from flowscope.proto.identity import identity_pb2, identity_pb2_grpc

log = logging.getLogger(__name__)

IDENTITY_INIT: Final = RESERVED_IDENTITY_NUMBERS["init"]
# Label sets per Allocate call (the relay takes up to 10,000).
BATCH: Final = 1000


class RelayUnavailable(FlowscopeError):
    """The relay did not answer an allocation, or answered what cannot be used."""


class Allocator(Protocol):
    def allocate(self, label_sets: Sequence[Iterable[str]], timeout: float) -> list[int]: ...


class IdentityClient:
    """Asks a relay's Identities service for the numbers of label sets, in batches."""

    def __init__(
        self,
        relay_address: str,
        node_name: str,
        tls: ClientTLS | None = None,
        auth: ClientAuth | None = None,
    ) -> None:
        self.relay_address = relay_address
        self._node_name = node_name
        self._tls = tls
        self._auth = auth
        # InputError now, not at every call, for a token that would go in plain text to
        # another host.
        self._channel().close()

    def _channel(self) -> grpc.Channel:
        channel = dial(self.relay_address, self._tls)
        return authorized_channel(
            channel, self._auth, server=self.relay_address, tls=self._tls is not None
        )

    def allocate(self, label_sets: Sequence[Iterable[str]], timeout: float) -> list[int]:
        """The relay's numbers, in order; RelayUnavailable naming the relay when it does not
        answer within timeout (waiting for it to come up meanwhile)."""
        requests = [
            identity_pb2.AllocateRequest(
                label_sets=[identity_pb2.LabelSet(labels=sorted(set(labels)))
                            for labels in label_sets[start:start + BATCH]],
                node_name=self._node_name,
            )
            for start in range(0, len(label_sets), BATCH)
        ]
        numbers: list[int] = []
        # A channel per call: a relay that comes back is reached at once, not after the
        # channel's own reconnect backoff.
        with self._channel() as channel:
            stub = identity_pb2_grpc.IdentitiesStub(channel)
            for request in requests:
                try:
                    answer = stub.Allocate(request, timeout=timeout, wait_for_ready=True)
                except grpc.RpcError as err:
                    raise RelayUnavailable(
                        f"relay {self.relay_address}: no identities: {err.code().name}: "
                        f"{err.details()}"
                    ) from None
                if len(answer.identities) != len(request.label_sets) or not all(
                    map(is_cluster_identity, answer.identities)
                ):
                    raise RelayUnavailable(
                        f"relay {self.relay_address}: {len(answer.identities)} identities for "
                        f"{len(request.label_sets)} label sets, or some outside 256-65535"
                    )
                numbers.extend(answer.identities)
        return numbers


class RelayIdentities:
    """Identities for the endpoint registry, from the relay (see the module docstring)."""

    def __init__(
        self,
        client: Allocator,
        state_path: Path | None,
        wait: float = 2.0,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._client = client
        self._path = state_path
        self._wait = wait
        self._backoff = backoff
        self._lock = threading.Lock()
        cached: dict[str, int] = {}
        if state_path is not None:
            allocator, cached = read_state(state_path)
            if allocator != RELAY and cached:
                log.info("%s: %d identities allocated locally; the relay's replace them",
                         state_path, len(cached))
                cached = {}
        # The relay's numbers as last known, and the number each label set was given.
        self._numbers = cached
        self._given: dict[str, int] = {}
        # Label sets whose number the relay has not given or confirmed in this run.
        self._unconfirmed = set(cached)
        self._updates: dict[str, int] = {}
        self._reachable = True
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relay-identities", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def identities_for(self, label_sets: Sequence[Iterable[str]]) -> list[int]:
        """The relay's numbers; `init` for label sets it has not given one yet."""
        keys = [label_key(labels) for labels in label_sets]
        with self._lock:
            unknown = [key for key in dict.fromkeys(keys) if key not in self._numbers]
            reachable = self._reachable
        if unknown and reachable:
            self._ask(unknown, self._wait)
        with self._lock:
            answer = [self._numbers.get(key, IDENTITY_INIT) for key in keys]
            self._given.update(zip(keys, answer, strict=True))
            self._unconfirmed.update(key for key in keys if key not in self._numbers)
            waiting = bool(self._unconfirmed)
        if waiting:
            self._wake.set()
        return answer

    def take_updates(self) -> dict[str, int]:
        """{label set key: number} for the label sets whose number changed since it was given
        (to re-label their endpoints), emptied by the call."""
        with self._lock:
            updates, self._updates = self._updates, {}
        return updates

    @property
    def reachable(self) -> bool:
        """Whether the relay answered the last request."""
        return self._reachable

    def _ask(self, keys: Sequence[str], timeout: float) -> bool:
        try:
            numbers = self._client.allocate([key.split(",") for key in keys], timeout)
        except RelayUnavailable as err:
            if self._reachable:
                log.warning("%s; new label sets get identity init (%d) until it answers",
                            err, IDENTITY_INIT)
            self._reachable = False
            return False
        with self._lock:
            for key, number in zip(keys, numbers, strict=True):
                self._numbers[key] = number
                self._unconfirmed.discard(key)
                if self._given.get(key, number) != number:
                    self._given[key] = number
                    self._updates[key] = number
            if self._path is not None:
                write_state(self._path, RELAY, self._numbers)
            if not self._reachable:
                log.info("the relay answers again: %d label sets have their identity", len(keys))
            self._reachable = True
        return True

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping.is_set():
            self._wake.clear()
            with self._lock:
                keys = sorted(self._unconfirmed)
            if not keys:
                self._wake.wait()
                continue
            # A short call, so that stop() is not held up by a relay that is away.
            if self._ask(keys, timeout=self._wait):
                delay = self._backoff[0]
                continue
            self._stopping.wait(delay)
            delay = min(delay * 2, self._backoff[1])
