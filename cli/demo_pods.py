"""The programs `flowscope demo` runs inside its lab pods: small servers and steady clients.

    python -m flowscope.cli.demo_pods http-server PORT      an nginx-like web server
    python -m flowscope.cli.demo_pods tcp-echo PORT         a database-like TCP service
    python -m flowscope.cli.demo_pods udp-echo PORT         a DNS-like UDP service
    python -m flowscope.cli.demo_pods client KIND ADDRESS PORT INTERVAL
                                        one request (KIND http, tcp or udp) every INTERVAL
                                        seconds, forever; prints nothing

Each request has a timeout of one second, so a client whose requests policy drops keeps
its pace. The demo only ever points clients at lab addresses.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Final

TIMEOUT: Final = 1.0
PAGE: Final = b"<html><body><h1>Welcome to the flowscope demo</h1></body></html>\n"


class _Page(http.server.BaseHTTPRequestHandler):
    server_version = "nginx"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the demo's output is flowscope's


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            while data := sock.recv(4096):
                sock.sendall(data)
        except OSError:
            pass


class _UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


def _serve(server: socketserver.BaseServer) -> int:
    with server:
        server.serve_forever()
    return 0


def _http(address: str, port: int) -> None:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=TIMEOUT) as answer:
        answer.read()


def _tcp(address: str, port: int) -> None:
    with socket.create_connection((address, port), timeout=TIMEOUT) as sock:
        sock.sendall(b"SELECT 1;\n")
        sock.recv(64)


def _udp(address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(b"\x12\x34 flowscope.demo A?", (address, port))
        sock.recv(512)


REQUESTS: Final[dict[str, Callable[[str, int], None]]] = {"http": _http, "tcp": _tcp,
                                                           "udp": _udp}


def client(kind: str, address: str, port: int, interval: float) -> int:
    request = REQUESTS[kind]
    while True:
        started = time.monotonic()
        # Dropped by policy or refused: the demo shows it as events.
        with contextlib.suppress(OSError):
            request(address, port)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def main(argv: list[str]) -> int:
    command, *args = argv
    socketserver.TCPServer.allow_reuse_address = True
    if command == "http-server":
        return _serve(http.server.ThreadingHTTPServer(("0.0.0.0", int(args[0])), _Page))
    if command == "tcp-echo":
        return _serve(socketserver.ThreadingTCPServer(("0.0.0.0", int(args[0])), _Echo))
    if command == "udp-echo":
        return _serve(socketserver.UDPServer(("0.0.0.0", int(args[0])), _UdpEcho))
    if command == "client":
        return client(args[0], args[1], int(args[2]), float(args[3]))
    raise SystemExit(f"unknown demo pod command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
