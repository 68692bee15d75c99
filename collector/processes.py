"""Which process owns each end of a TCP connection, from the sock:inet_sock_set_state events.

Clients are known by their connection's exact tuple (reported when the connection is
established). Servers are known by their listening port inside the network namespace of the
process that called listen(), so a connection reaching an endpoint on that port belongs to that
process. Both tables are bounded; the oldest entries go first.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Final, TypeVar

from flowscope.proto.flow import flow_pb2

DEFAULT_CAPACITY: Final = 65536

# (local address, local port, remote address, remote port)
EndKey = tuple[str, int, str, int]
K = TypeVar("K")


class ProcessTable:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._clients: OrderedDict[EndKey, flow_pb2.Process] = OrderedDict()
        self._listeners: OrderedDict[tuple[int, int], flow_pb2.Process] = OrderedDict()

    def connected(self, local: str, local_port: int, remote: str, remote_port: int,
                  pid: int, command: str) -> None:
        with self._lock:
            self._put(self._clients, (local, local_port, remote, remote_port),
                      flow_pb2.Process(pid=pid, command=command))

    def listening(self, port: int, pid: int, command: str) -> None:
        """A process listens on `port`; its network namespace is looked up now, while it runs."""
        inode = netns_inode_of(pid)
        if inode:
            with self._lock:
                self._put(self._listeners, (inode, port),
                          flow_pb2.Process(pid=pid, command=command))

    def owner(self, local: str, local_port: int, remote: str, remote_port: int,
              netns_inode: int) -> flow_pb2.Process | None:
        """The process at the local end of a connection, if one is known."""
        with self._lock:
            client = self._clients.get((local, local_port, remote, remote_port))
            if client is not None:
                return client
            if netns_inode:
                return self._listeners.get((netns_inode, local_port))
            return None

    def _put(self, table: OrderedDict[K, flow_pb2.Process], key: K,
             value: flow_pb2.Process) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._capacity:
            table.popitem(last=False)


def netns_inode_of(pid: int) -> int:
    """Inode of a process's network namespace; 0 when the process is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return 0
