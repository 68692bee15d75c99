"""What routes get from the app: the relay client and the lost-event counts."""

from __future__ import annotations

from fastapi import Request

from flowscope.ui.lost import LostEvents
from flowscope.ui.relay_client import RelayClient


def relay(request: Request) -> RelayClient:
    client: RelayClient = request.app.state.relay
    return client


def lost_events(request: Request) -> LostEvents:
    lost: LostEvents = request.app.state.lost_watcher.lost
    return lost
