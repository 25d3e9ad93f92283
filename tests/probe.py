"""A TCP pass-through in front of a real server that counts requests awaiting their answer.

For request/response protocols (HTTP/1.1): a connection is awaiting from the first bytes the
client sends until the first bytes the server sends back. ``most_awaiting`` is the largest
number of connections that were awaiting at the same time, i.e. how many requests the server
had in hand at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class RequestProbe:
    target_host: str
    target_port: int
    port: int = 0
    connections: int = 0
    requests: int = 0
    awaiting: int = 0
    most_awaiting: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        state = {"awaiting": False}

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if not state["awaiting"]:
                    state["awaiting"] = True
                    self.requests += 1
                    self.awaiting += 1
                    self.most_awaiting = max(self.most_awaiting, self.awaiting)
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if state["awaiting"]:
                    state["awaiting"] = False
                    self.awaiting -= 1
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            if state["awaiting"]:
                self.awaiting -= 1
            server_w.close()
            client_w.close()


@asynccontextmanager
async def request_probe(host: str, port: int) -> AsyncIterator[RequestProbe]:
    """A :class:`RequestProbe` listening on a free loopback port while the context is open."""
    probe = RequestProbe(host, port)

    def spawn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(probe._serve(r, w))
        probe._tasks.add(task)
        task.add_done_callback(probe._tasks.discard)

    server = await asyncio.start_server(spawn, "127.0.0.1", 0)
    probe.port = server.sockets[0].getsockname()[1]
    try:
        yield probe
    finally:
        server.close()
        for task in list(probe._tasks):
            task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*probe._tasks, return_exceptions=True)
        await server.wait_closed()
