"""The collector's local control socket: policy apply, delete, list and get, for root only.

Changing policy is privileged, so the socket is a unix socket of mode 0600 in a root-owned
folder, and the server also checks the caller's uid (SO_PEERCRED). One request per
connection: the client sends one JSON object and shuts down its writing side; the server
answers one JSON object and closes.

    {"op": "apply", "files": [{"name": "np.yaml", "text": "..."}]}
    {"op": "delete", "name": "default/allow-web", "kind": null}
    {"op": "list"}
    {"op": "get", "name": "default/allow-web", "kind": null}

Answers are {"ok": true, ...} or {"ok": false, "error": "<message>"}; a policy file that does
not parse is refused with the parser's message (file, line, field path, problem) and changes
nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from flowscope.collector.policy import Change, Policy, StoredPolicy, parse_policies
from flowscope.common.errors import FlowscopeError, InputError

log = logging.getLogger(__name__)

DEFAULT_SOCKET: Final = Path("/run/flowscope/collector.sock")
MAX_REQUEST: Final = 16 << 20  # bytes: policy files are small
_TIMEOUT: Final = 10.0


class PolicyControl(Protocol):
    """What the control socket calls (collector.enforcement.PolicyEnforcer)."""

    @property
    def revision(self) -> int: ...

    def apply(self, policies: Sequence[Policy]) -> Change: ...

    def delete(self, name: str, kind: str | None = None) -> Change: ...

    def list(self) -> list[StoredPolicy]: ...

    def get(self, name: str, kind: str | None = None) -> StoredPolicy: ...


def describe(stored: StoredPolicy) -> dict[str, Any]:
    """A policy as list and get report it."""
    policy = stored.policy
    return {"kind": policy.id.kind, "namespace": policy.id.namespace, "name": policy.id.name,
            "revision": stored.revision, "rules": policy.rule_count, "audit": policy.audit,
            "source": policy.source}


def handle(request: object, control: PolicyControl) -> dict[str, Any]:
    """The answer to one request (format in the module docstring)."""
    try:
        if not isinstance(request, dict):
            raise InputError("a request is a JSON object")
        op = request.get("op")
        if op == "apply":
            policies = _policies(request.get("files"))
            change = control.apply(policies)
            return {"ok": True, "revision": change.revision,
                    "applied": [f"{p.id.kind} {p.id}" for p in policies]}
        if op == "delete":
            change = control.delete(_text(request, "name"), _kind(request))
            return {"ok": True, "revision": change.revision}
        if op == "list":
            return {"ok": True, "revision": control.revision,
                    "policies": [describe(stored) for stored in control.list()]}
        if op == "get":
            stored = control.get(_text(request, "name"), _kind(request))
            return {"ok": True, "policy": describe(stored)}
        raise InputError(f"unknown request {op!r} (expected apply, delete, list or get)")
    except FlowscopeError as exc:
        return {"ok": False, "error": str(exc)}


def _policies(files: object) -> list[Policy]:
    if not isinstance(files, list) or not files:
        raise InputError("apply: expected a non-empty list of files")
    policies: list[Policy] = []
    for item in files:
        if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("name", "text")):
            raise InputError("apply: each file is {\"name\": ..., \"text\": ...}")
        policies += parse_policies(item["text"], item["name"])
    return policies


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{request.get('op')}: expected a {key}")
    return value


def _kind(request: dict[str, Any]) -> str | None:
    kind = request.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise InputError("kind must be a string")
    return kind


class ControlServer:
    """Serves the control socket at `path` from a thread of its own; inert until start()."""

    def __init__(self, path: Path, control: PolicyControl,
                 allowed_uid: Callable[[int], bool] = lambda uid: uid == 0) -> None:
        self.path = path
        self._control = control
        self._allowed_uid = allowed_uid
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.is_socket() and _answers(self.path):
            raise FlowscopeError(f"{self.path}: another collector is serving this control "
                                 "socket")
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The socket is created with mode 0600: no moment where others could connect.
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        sock.listen(16)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="flowscope-control",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()
            self.path.unlink(missing_ok=True)
        self._sock = None

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(_TIMEOUT)
            try:
                message = _receive(conn)
                if not self._allowed_uid(peer_uid(conn)):
                    answer: dict[str, Any] = {
                        "ok": False, "error": "changing policy needs root"}
                else:
                    answer = handle(_decode(message), self._control)
                conn.sendall(json.dumps(answer).encode())
            except (OSError, ValueError) as exc:
                log.warning("control socket: %s", exc)


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _receive(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := conn.recv(65536):
        size += len(chunk)
        if size > MAX_REQUEST:
            raise ValueError(f"request larger than {MAX_REQUEST} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None  # handle() answers that a request is a JSON object


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def request(path: Path, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the collector's control socket; its answer, or FlowscopeError
    with the collector's message."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except PermissionError as exc:
            raise FlowscopeError(f"cannot use the collector's control socket {path}: "
                                 "permission denied (managing policy needs root)") from exc
        except OSError as exc:
            raise FlowscopeError(f"cannot reach the collector at {path}: {exc.strerror} "
                                 "(is `flowscope collector` running?)") from exc
        try:
            sock.sendall(json.dumps(message).encode())
            sock.shutdown(socket.SHUT_WR)
            data = _receive(sock)
        except OSError as exc:
            raise FlowscopeError(f"the collector at {path} did not answer: "
                                 f"{exc.strerror or exc}") from exc
    try:
        answer = json.loads(data)
    except ValueError as exc:
        raise FlowscopeError(f"the collector at {path} gave no answer") from exc
    if not isinstance(answer, dict):
        raise FlowscopeError(f"the collector at {path} gave an unexpected answer")
    if not answer.get("ok"):
        raise FlowscopeError(str(answer.get("error", "the collector refused the request")))
    return answer

