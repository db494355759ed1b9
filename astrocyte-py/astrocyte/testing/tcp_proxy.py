"""A loopback TCP proxy that adapter tests put between a client and a real server.

It lets a test make a real server *look* down, hung or restarted without touching the
server itself (restarting a JVM-based store takes tens of seconds):

* ``cut()`` drops every open connection and refuses new ones (server gone);
* ``hang()`` accepts connections but forwards nothing (a timeout);
* ``restore()`` forwards normally again (server back).

The bytes are the server's own protocol, unchanged; nothing is faked.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

__all__ = ["TcpProxy"]

Mode = Literal["forward", "refuse", "hang"]


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``.

    Use as ``async with TcpProxy(host, port) as proxy:`` and connect clients to
    ``proxy.port``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._mode: Mode = "forward"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> int:
        """Start listening on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def cut(self) -> None:
        """Drop all connections and refuse new ones until :meth:`restore`."""
        self._mode = "refuse"
        self._drop_all()

    def hang(self) -> None:
        """Accept new connections but never answer (existing ones are dropped)."""
        self._mode = "hang"
        self._drop_all()

    def restore(self) -> None:
        """Forward new connections to the server again."""
        self._mode = "forward"

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self._drop_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self._mode == "hang":
            return  # kept open, never read: the client waits until its own timeout
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.transport.abort()
