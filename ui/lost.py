"""Lost events for the status bar: one follow stream to the relay that lets no
flow through (its blacklist holds the empty filter, which matches every flow)
and counts the LostEvents that come in it, by source, since the UI started.
It reconnects after a failure and says whether it is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Final

from flowscope.proto.flow import flow_pb2
from flowscope.proto.observer import observer_pb2
from flowscope.ui.relay_client import RelayClient, RelayError

RETRY_SECONDS: Final = 2.0


@dataclass
class LostEvents:
    """Events lost upstream, by LostEventSource name, as the relay reported them."""

    by_source: dict[str, int] = field(default_factory=dict)
    connected: bool = False
    last_error: str = ""

    @property
    def total(self) -> int:
        return sum(self.by_source.values())


class LostEventWatcher:
    """Counts lost events in the background between start() and stop()."""

    def __init__(self, relay: RelayClient, retry: float = RETRY_SECONDS) -> None:
        self._relay = relay
        self._retry = retry
        self.lost = LostEvents()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        request = observer_pb2.GetFlowsRequest(follow=True, blacklist=[flow_pb2.FlowFilter()])
        while True:
            try:
                async for response in self._relay.flows(request):
                    self.lost.connected = True
                    if response.HasField("lost_events"):
                        event = response.lost_events
                        name = flow_pb2.LostEventSource.Name(event.source)
                        self.lost.by_source[name] = (
                            self.lost.by_source.get(name, 0) + event.num_events_lost
                        )
            except RelayError as error:
                self.lost.last_error = str(error)
            self.lost.connected = False
            await asyncio.sleep(self._retry)
