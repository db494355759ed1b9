"""Latency the astrocyte-memory gateway plugin adds to a chat completion, with wrk.

    python benchmarks/plugin_latency.py --duration 10 --connections 1

Everything runs on loopback: the real Astrocyte gateway (``astrocyte-gateway`` console
script in its own process; in-memory storage, hashing embedder, ``--memories`` seeded
memories in the bench bank), a fake OpenAI-compatible LLM that answers at once with a
fixed reply (``upstreams.start_chat_upstream``) and a real nginx + lua-nginx-module
(``gateway-plugins/tests/nginx_harness.py``) running the unchanged Kong plugin through
its PDK test shim. ``wrk`` (Debian) drives ``POST /v1/chat/completions``; a Lua
``done()`` hook prints wrk's own latency percentiles.

Scenarios, each for ``--duration`` seconds at ``--connections`` concurrent connections:

- ``direct``: nginx proxying to the LLM, no Lua at all (the baseline).
- ``plugin_recall``: the plugin with recall + injection, retain off.
- ``plugin_recall_retain``: the plugin as deployed (retain from a timer after the
  response), on its own bank, which grows by one memory per request during the run.
- ``recall_only``: wrk straight at the gateway's ``/v1/recall`` with the same query, to
  split the plugin's cost into "the recall call" and "everything else".

Reported per scenario: p50/p90/p99/mean latency (ms) and requests/s; and the plugin's
added p50/p99 over ``direct``. Results are printed and appended to
``benchmarks/results/plugin_latency.json``. Absolute numbers are dominated by the Python
gateway's recall on a 2-core machine shared with the load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gateway-plugins" / "tests"))

from nginx_harness import KONG_DIR, KONG_SHIM_DIR, Nginx, missing_reason  # noqa: E402
from upstreams import start_chat_upstream  # noqa: E402

from astrocyte import __version__  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "plugin_latency.json"
API_KEY = "bench-key-0123456789abcdef"
BANK = "bench"
WARMUP_S = 2
QUERY = "Which city does the user want to travel to next spring?"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
function done(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\\"p50_us\\":%%d,\\"p90_us\\":%%d,\\"p99_us\\":%%d,\\"mean_us\\":%%f,"
    .. "\\"requests\\":%%d,\\"duration_us\\":%%d,\\"errors\\":%%d,\\"non_2xx\\":%%d}\\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    summary.errors.status))
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Api-Key": API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def start_gateway(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = {
        "storage": {"backend": "memory"},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {
            "auth": {"mode": "api_key", "api_keys": [{"key": API_KEY, "principal": "user:b"}]}
        },
    }
    path = workdir / "astrocyte.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    port = _free_port()
    exe = Path(sys.executable).parent / "astrocyte-gateway"
    command = [str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc, url
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("astrocyte-gateway did not start") from None
            time.sleep(0.2)


def seed(url: str, memories: int, bank: str = BANK) -> None:
    cities = ["Lisbon", "Kyoto", "Oslo", "Lima", "Hanoi", "Quito", "Tunis", "Perth"]
    for i in range(memories):
        city = cities[i % len(cities)]
        text = f"Note {i}: the user mentioned {city} while planning trip number {i}."
        _post(f"{url}/v1/retain", {"content": text, "bank_id": bank})


def run_wrk(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    duration: int,
    connections: int,
    workdir: Path,
) -> dict[str, Any]:
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT % {"body": json.dumps(body), "headers": header_lines})
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s"]
    out = subprocess.run(
        [*command, "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    return {
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "errors": raw["errors"],
        "non_2xx": raw["non_2xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--memories", type=int, default=200, help="seeded into the bank")
    parser.add_argument("--max-results", type=int, default=5)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    reason = missing_reason() or (None if shutil.which("wrk") else "wrk not installed")
    if reason:
        sys.exit(f"cannot run: {reason}")

    chat = {
        "model": "bench",
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "user", "content": QUERY},
        ],
    }
    results: dict[str, Any] = {}
    llm = start_chat_upstream("Kyoto.")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        gw_proc, gw_url = start_gateway(workdir)
        try:
            seed(gw_url, args.memories)
            upstream = llm.url
            conf = {
                "astrocyte_url": gw_url,
                "api_key": API_KEY,
                "bank": BANK,
                "max_results": args.max_results,
                "timeout_ms": 2000,  # measure recall, not the fail-open path
            }
            plugin = {"runner": "kong_runner", "lua_paths": [KONG_DIR, KONG_SHIM_DIR]}
            scenarios: list[tuple[str, dict[str, Any]]] = [
                ("direct", {}),
                ("plugin_recall", {**plugin, "plugin_conf": {**conf, "retain": False}}),
                (
                    "plugin_recall_retain",
                    {**plugin, "plugin_conf": {**conf, "bank": BANK + "-retain"}},
                ),
            ]
            # The retain scenario's bank starts like the recall one, then grows.
            seed(gw_url, args.memories, bank=BANK + "-retain")
            for name, harness in scenarios:
                with Nginx(upstream=upstream, error_log_level="warn", **harness) as ngx:
                    url = ngx.url + "/v1/chat/completions"
                    # Warm-up (connection pools, LuaJIT traces), discarded.
                    run_wrk(url, chat, {}, WARMUP_S, args.connections, workdir)
                    results[name] = run_wrk(url, chat, {}, args.duration, args.connections, workdir)
                print(f"{name:22s} {results[name]}", flush=True)
            recall_body = {"query": QUERY, "bank_id": BANK, "max_results": args.max_results}
            recall_url, key = gw_url + "/v1/recall", {"X-Api-Key": API_KEY}
            run_wrk(recall_url, recall_body, key, WARMUP_S, args.connections, workdir)
            results["recall_only"] = run_wrk(
                recall_url,
                recall_body,
                key,
                args.duration,
                args.connections,
                workdir,
            )
            print(f"{'recall_only':22s} {results['recall_only']}", flush=True)
        finally:
            gw_proc.terminate()
            try:
                gw_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gw_proc.kill()
            llm.stop()

    direct = results["direct"]
    added = {
        name: {
            "p50_ms": round(results[name]["p50_ms"] - direct["p50_ms"], 3),
            "p99_ms": round(results[name]["p99_ms"] - direct["p99_ms"], 3),
        }
        for name in ("plugin_recall", "plugin_recall_retain")
    }
    added["plugin_minus_recall_p50_ms"] = round(
        added["plugin_recall"]["p50_ms"] - results["recall_only"]["p50_ms"], 3
    )
    run = {
        "benchmark": "plugin_latency",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "astrocyte": __version__,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "nginx": subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        "load": {
            "tool": "wrk 4.1 (-t1)",
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": WARMUP_S,
        },
        "bank": {
            "memories": args.memories,
            "embedder": "hashing",
            "storage": "memory",
            "max_results": args.max_results,
        },
        "plugin": "kong astrocyte-memory via the PDK test shim (nginx + lua-nginx-module)",
        "scenarios": results,
        "added_over_direct": added,
    }
    print(json.dumps(run["added_over_direct"], indent=2))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
        data["runs"].append(run)
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
