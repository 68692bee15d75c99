"""Traffic for kernel tests, run inside a lab pod: `python traffic.py COMMAND ARGS...`.

    ping ADDRESS COUNT              ICMP or ICMPv6 echo requests; exits 0 if all were answered
    udp ADDRESS PORT COUNT SIZE     COUNT datagrams of SIZE payload bytes from one socket
    udp-from SPORT ADDRESS PORT COUNT SIZE
                                    the same, from source port SPORT
    udp-spread ADDRESS PORT COUNT   one datagram from each of COUNT sockets, bound to source
                                    ports 20000, 20001, ... (distinct connections)
    tcp ADDRESS PORT SIZE           connect, send SIZE bytes, wait for the peer to close
    sink PORT                       TCP server: accept connections and read until closed
    udp-sink PORT                   UDP server: read datagrams
    unroutable ADDRESS              exits 0 if the pod has no route to ADDRESS (nothing is sent)
    connect ADDRESS PORT            one TCP connection attempt; exits 0 if refused
    tcp-on-cue ADDRESS PORT SIZE    connect, print "connected", send SIZE bytes when a line
                                    arrives on standard input, then close
    reach ADDRESS PORT TIMEOUT      one TCP connection with a round trip of data through an
                                    echo server; exits 0 if it worked, 3 if it timed out
    echo PORT                       TCP server: echo what each connection sends

Only lab addresses are used by the tests; this script sends wherever it is told.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import sys
import threading
import time


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(address: str, count: int) -> int:
    v6 = _family(address) == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    sock = socket.socket(_family(address), socket.SOCK_RAW, proto)
    sock.settimeout(2.0)
    ident = os.getpid() & 0xFFFF
    answered = 0
    for seq in range(count):
        request_type = 128 if v6 else 8
        header = struct.pack("!BBHHH", request_type, 0, 0, ident, seq)
        payload = b"flowscope"
        # The kernel fills in the ICMPv6 checksum; ICMPv4's is ours to compute.
        checksum = 0 if v6 else _checksum(header + payload)
        packet = struct.pack("!BBHHH", request_type, 0, checksum, ident, seq) + payload
        sock.sendto(packet, (address, 0))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            data = sock.recv(2048)
            icmp = data if v6 else data[(data[0] & 0xF) * 4:]
            reply_type = 129 if v6 else 0
            if icmp[0] == reply_type and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                answered += 1
                break
    return 0 if answered == count else 1


def udp(address: str, port: int, count: int, size: int, source_port: int = 0) -> int:
    with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
        sock.bind(("", source_port))
        for _ in range(count):
            sock.sendto(b"x" * size, (address, port))
    return 0


def udp_spread(address: str, port: int, count: int) -> int:
    for i in range(count):
        with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
            sock.bind(("", 20000 + i))
            sock.sendto(b"x", (address, port))
    return 0


def tcp(address: str, port: int, size: int) -> int:
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(b"x" * size)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    return 0


def sink(port: int) -> int:
    with socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True) as srv:
        print("listening", flush=True)
        while True:
            conn, _ = srv.accept()
            with conn:
                while conn.recv(65536):
                    pass


def udp_sink(port: int) -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        print("listening", flush=True)
        while True:
            sock.recv(65536)


def unroutable(address: str) -> int:
    with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, 9))  # a route lookup only: no packet is sent
        except OSError as exc:
            return 0 if exc.errno == errno.ENETUNREACH else 1
    return 1


def connect(address: str, port: int) -> int:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except ConnectionRefusedError:
        return 0
    return 1


def tcp_on_cue(address: str, port: int, size: int) -> int:
    with socket.create_connection((address, port), timeout=10) as sock:
        print("connected", flush=True)
        sys.stdin.readline()
        sock.sendall(b"x" * size)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    return 0


def reach(address: str, port: int, timeout: float) -> int:
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(b"ping")
            return 0 if sock.recv(4) == b"ping" else 1
    except TimeoutError:
        return 3


def _echo_connection(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(5)
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass


def echo(port: int) -> int:
    with socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True) as srv:
        print("listening", flush=True)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=_echo_connection, args=(conn,), daemon=True).start()


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "ping":
        return ping(args[0], int(args[1]))
    if command == "udp":
        return udp(args[0], int(args[1]), int(args[2]), int(args[3]))
    if command == "udp-from":
        return udp(args[1], int(args[2]), int(args[3]), int(args[4]), int(args[0]))
    if command == "udp-spread":
        return udp_spread(args[0], int(args[1]), int(args[2]))
    if command == "tcp":
        return tcp(args[0], int(args[1]), int(args[2]))
    if command == "sink":
        return sink(int(args[0]))
    if command == "udp-sink":
        return udp_sink(int(args[0]))
    if command == "unroutable":
        return unroutable(args[0])
    if command == "tcp-on-cue":
        return tcp_on_cue(args[0], int(args[1]), int(args[2]))
    if command == "reach":
        return reach(args[0], int(args[1]), float(args[2]))
    if command == "echo":
        return echo(int(args[0]))
    if command == "connect":
        return connect(args[0], int(args[1]))
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
