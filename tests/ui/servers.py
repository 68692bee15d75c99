"""The servers the UI tests and benchmark run: the relay process
(relay_process.py) and the UI under uvicorn, both on free loopback ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

from flowscope.common import jsonlines
from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.ui.app import create_app

HERE = Path(__file__).resolve().parent


class RelayProcess:
    """The relay subprocess; `append` puts a flow in its node's ring."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "relay_process.py"), str(directory), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the relay process ended: {self._process.wait()}")
        addresses = json.loads(line)
        self.address: str = addresses["relay"]
        self.node: str = addresses["node"]

    def append(self, flow: flow_pb2.Flow) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        response = observer_pb2.GetFlowsResponse(flow=flow, node_name=flow.node_name)
        self._process.stdin.write(jsonlines.dumps(response) + "\n")
        self._process.stdin.flush()
        assert self._process.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class UiServer:
    """The UI app under uvicorn in a thread, until stop()."""

    def __init__(self, relay_address: str) -> None:
        port = free_port()
        config = uvicorn.Config(
            create_app(relay_address), host="127.0.0.1", port=port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the UI did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
