"""The gRPC connection to a flowscope server (the relay, or a node's collector).

`connect` opens a channel to `--server` and waits at most `--timeout` for it to
connect or fail, so an unreachable server is reported at once, with gRPC's
reason. With `--tls` (or a tls:// address) the channel is TLS, checked against
`--tls-ca-cert-files` and presenting `--tls-client-cert-file` for mutual TLS;
`--token` (or basic auth) goes with every call, never in plain text to another
host. `GrpcObserver` streams the responses of GetFlows, GetAgentEvents and
GetDebugEvents to a writer; it speaks Hubble's Observer API, so it also reads
from a Hubble relay. `--request-timeout` bounds single (unary) calls.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import grpc

from flowscope.cli import config
from flowscope.common.auth import (
    ClientAuth,
    add_client_auth_flags,
    authorized_channel,
    client_credentials,
)
from flowscope.common.errors import FlowscopeError
from flowscope.common.tls import (
    ClientTLS,
    add_client_tls_flags,
    client_tls_from_args,
    dial,
    split_server_address,
)
from flowscope.proto.observer import observer_pb2, observer_pb2_grpc

SERVER_KEYS: Final = ("server", "timeout", "request-timeout")

Response = TypeVar("Response")
Response_co = TypeVar("Response_co", covariant=True)


class ServerError(FlowscopeError):
    """The server cannot be reached, or it refused or failed a call."""


@dataclass(frozen=True)
class ServerOptions:
    """Where the server is, how long to wait for it (seconds), its TLS and credentials."""

    address: str
    timeout: float
    request_timeout: float
    tls: ClientTLS | None = None
    auth: ClientAuth | None = None

    @classmethod
    def from_settings(cls, settings: config.Settings, args: argparse.Namespace) -> ServerOptions:
        """The settings' server, with the TLS and credential flags of add_server_flags."""
        address = settings.text("server")
        return cls(
            address=address,
            timeout=settings.seconds("timeout"),
            request_timeout=settings.seconds("request-timeout"),
            tls=client_tls_from_args(args, address),
            auth=client_credentials(args),
        )


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    for key in SERVER_KEYS:
        config.add_flag(group, key)
    add_client_tls_flags(parser.add_argument_group("TLS"))
    add_client_auth_flags(parser.add_argument_group("authentication"))


_SETTLED: Final = frozenset(
    {
        grpc.ChannelConnectivity.READY,
        grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        grpc.ChannelConnectivity.SHUTDOWN,
    }
)


def connect(options: ServerOptions) -> grpc.Channel:
    """A channel to the server, connected; ServerError when it cannot connect in time,
    InputError for a bad TLS file or credentials that would go in plain text."""
    address, _ = split_server_address(options.address)
    tls = options.tls is not None
    plain = dial(address, options.tls)
    try:
        channel = authorized_channel(plain, options.auth, server=options.address, tls=tls)
    except FlowscopeError:
        plain.close()
        raise
    state = _settle(channel, options.timeout)
    if state is grpc.ChannelConnectivity.READY:
        return channel
    try:
        if state is None:
            raise ServerError(
                f"cannot connect to the flowscope server at {options.address}: "
                f"no connection after {options.timeout:g}s"
            )
        # The connection failed; a call that does not wait for it says why.
        observer_pb2_grpc.ObserverStub(channel).ServerStatus(
            observer_pb2.ServerStatusRequest(),
            timeout=options.request_timeout,
            wait_for_ready=False,
        )
    except grpc.RpcError as err:
        channel.close()
        raise ServerError(
            f"cannot connect to the flowscope server at {options.address}: {_details(err)}"
        ) from None
    except ServerError:
        channel.close()
        raise
    return channel  # it connected in the meantime


def _settle(channel: grpc.Channel, timeout: float) -> grpc.ChannelConnectivity | None:
    """The channel's state once it connects or fails; None if neither within `timeout`."""
    settled: list[grpc.ChannelConnectivity] = []
    done = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in _SETTLED:
            settled.append(state)
            done.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        done.wait(timeout)
    finally:
        channel.unsubscribe(watch)
    return settled[0] if settled else None


def _details(err: grpc.RpcError) -> str:
    if isinstance(err, grpc.Call):
        return err.details() or err.code().name
    return str(err)


class _StreamCall(Protocol[Response_co]):
    def __iter__(self) -> Iterator[Response_co]: ...
    def cancel(self) -> bool: ...


class GrpcObserver:
    """An Observer over a gRPC connection to a flowscope (or Hubble) server."""

    def __init__(self, options: ServerOptions) -> None:
        self._options = options
        self._channel = connect(options)
        self._stub = observer_pb2_grpc.ObserverStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def get_flows(
        self,
        request: observer_pb2.GetFlowsRequest,
        write: Callable[[observer_pb2.GetFlowsResponse], None],
    ) -> None:
        self._stream(self._stub.GetFlows(request), write)

    def get_agent_events(
        self,
        request: observer_pb2.GetAgentEventsRequest,
        write: Callable[[observer_pb2.GetAgentEventsResponse], None],
    ) -> None:
        self._stream(self._stub.GetAgentEvents(request), write)

    def get_debug_events(
        self,
        request: observer_pb2.GetDebugEventsRequest,
        write: Callable[[observer_pb2.GetDebugEventsResponse], None],
    ) -> None:
        self._stream(self._stub.GetDebugEvents(request), write)

    def _stream(self, call: _StreamCall[Response], write: Callable[[Response], None]) -> None:
        """Writes each response until the stream ends; ends it early on any exception."""
        try:
            for response in call:
                write(response)
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else None
            if code is grpc.StatusCode.CANCELLED:
                return
            address = self._options.address
            if code is grpc.StatusCode.UNAVAILABLE:
                raise ServerError(
                    f"lost the connection to the flowscope server at {address}: {_details(err)}"
                ) from None
            name = code.name if code is not None else "an error"
            raise ServerError(
                f"the flowscope server at {address} answered {name}: {_details(err)}"
            ) from None
        finally:
            call.cancel()
