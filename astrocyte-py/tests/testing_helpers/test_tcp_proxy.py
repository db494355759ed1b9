"""TcpProxy: forwards bytes, and cut/hang/restore behave as adapter tests rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from astrocyte.testing import TcpProxy


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 2)
    finally:
        writer.close()


async def test_forwards_bytes_both_ways(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        assert await _roundtrip(proxy.port, b"hello" * 10_000) == b"hello" * 10_000


async def test_cut_drops_open_connections_and_restore_recovers(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"x"
        proxy.cut()
        assert await asyncio.wait_for(reader.read(10), 2) == b""
        writer.close()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await _roundtrip(proxy.port, b"y")
        proxy.restore()
        assert await _roundtrip(proxy.port, b"z") == b"z"


async def test_hang_accepts_but_never_answers(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        proxy.hang()
        with pytest.raises(TimeoutError):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"ping")
            await asyncio.wait_for(reader.read(4), 0.3)
        writer.close()
