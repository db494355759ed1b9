"""Every response says how long its library call took (Server-Timing)."""

from __future__ import annotations

import re

import httpx
from helpers import api_key_config, h

_TIMING = re.compile(r"^library;dur=(\d+\.\d{3}), total;dur=(\d+\.\d{3})$")


def _timing(response: httpx.Response) -> tuple[float, float]:
    match = _TIMING.match(response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    return float(match.group(1)), float(match.group(2))


async def test_server_timing_splits_library_and_total(gateway_server):
    url = gateway_server(api_key_config())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/retain", json={"content": "a note", "bank_id": "b"}, headers=h())
        library, total = _timing(r)
        assert 0 < library <= total
        r = await client.post("/v1/recall", json={"query": "note", "bank_id": "b"}, headers=h())
        library, total = _timing(r)
        assert 0 < library <= total
        # No library call: nothing attributed to it.
        library, total = _timing(await client.get("/health/live"))
        assert library == 0 and total > 0
        # Errors carry it too (the library was never reached).
        r = await client.post("/v1/recall", json={"query": "x"}, headers={"X-Api-Key": "nope"})
        assert r.status_code == 401 and _timing(r)[0] == 0
