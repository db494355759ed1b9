"""A real nginx + lua-nginx-module running a gateway plugin's phases, for tests and benchmarks.

Kong and APISIX cannot be installed here, but both are nginx + Lua: the plugin files are
loaded unchanged and driven by a *runner* module (a shim of the host gateway) from the four
phase blocks of ``location /``, which then ``proxy_pass``es to the upstream.

A runner is a Lua module with::

    runner.init(conf_json)   -- once, in init_by_lua (parse + validate + default the config)
    runner.access()          -- access_by_lua
    runner.header_filter()   -- header_filter_by_lua
    runner.body_filter()     -- body_filter_by_lua
    runner.log()             -- log_by_lua

Usage::

    with Nginx(upstream=llm_url, runner="kong_runner", plugin_conf={...},
               lua_paths=[KONG_DIR, KONG_SHIM_DIR]) as ngx:
        http_post(ngx.url + "/v1/chat/completions", ...)
        ngx.error_log()          # the error log text (plugin warnings land here)

``runner=None`` gives a plain proxy with no Lua at all (the benchmark's baseline).
nginx runs in the foreground as one process (``master_process off``) as the current user,
from a temp prefix dir; stop it with ``stop()`` (or the ``with`` block).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLUGINS_DIR = HERE.parent
LUA_CORE_DIR = PLUGINS_DIR / "lua"
KONG_DIR = PLUGINS_DIR / "kong"
KONG_SHIM_DIR = HERE / "kong_shim"

MODULE_DIRS = ("/usr/share/nginx/modules", "/usr/lib/nginx/modules")
APT_PACKAGES = "nginx libnginx-mod-http-lua lua-cjson luajit2 lua5.1 lua-busted lua-check"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def lua_module() -> Path | None:
    for d in MODULE_DIRS:
        path = Path(d) / "ngx_http_lua_module.so"
        if path.exists():
            return path
    return None


def missing_reason() -> str | None:
    """Why the harness cannot run here, or None."""
    if nginx_binary() is None:
        return f"nginx not installed (apt-get install -y {APT_PACKAGES})"
    if lua_module() is None:
        return f"lua-nginx-module not installed (apt-get install -y {APT_PACKAGES})"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lua_long_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


class Nginx:
    """One nginx serving ``location /`` through a plugin runner (or plain proxy).

    Args:
        upstream: base URL to proxy to (``http://127.0.0.1:PORT``), request URI kept.
        runner: Lua module name of the runner, or None for no plugin at all.
        plugin_conf: the plugin config, handed to ``runner.init`` as JSON.
        lua_paths: directories added to ``lua_package_path`` (``<dir>/?.lua`` and
            ``<dir>/?/init.lua``); the shared core dir is always included.
        client_body_buffer_size: small values force bodies into temp files.
        extra_location: raw directives added to ``location /``.
        extra_http: raw directives added to the ``http`` block.
    """

    def __init__(
        self,
        *,
        upstream: str,
        runner: str | None = None,
        plugin_conf: dict[str, Any] | None = None,
        lua_paths: list[Path | str] = (),
        client_body_buffer_size: str = "16k",
        extra_location: str = "",
        extra_http: str = "",
        error_log_level: str = "info",
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.runner = runner
        self.plugin_conf = plugin_conf or {}
        self.lua_paths = [Path(p) for p in lua_paths]
        self.client_body_buffer_size = client_body_buffer_size
        self.extra_location = extra_location
        self.extra_http = extra_http
        self.error_log_level = error_log_level
        self.prefix: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log_path(self) -> Path:
        assert self.prefix is not None
        return self.prefix / "logs" / "error.log"

    def error_log(self) -> str:
        try:
            return self.error_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        """Wait until ``needle`` appears in the error log; returns the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.error_log()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in nginx error log:\n{text[-4000:]}")
            time.sleep(0.05)

    def config_text(self) -> str:
        assert self.prefix is not None
        paths = [LUA_CORE_DIR, *self.lua_paths]
        package_path = ";".join(f"{p}/?.lua;{p}/?/init.lua" for p in paths) + ";;"
        ndk = lua_module().parent / "ndk_http_module.so"  # type: ignore[union-attr]
        load = f"load_module {ndk};\n" if ndk.exists() else ""
        load += f"load_module {lua_module()};\n"
        plugin_http = ""
        phases = ""
        if self.runner is not None:
            conf = _lua_long_string(json.dumps(self.plugin_conf))
            plugin_http = f"""
    lua_package_path "{package_path}";
    init_by_lua_block {{
        require("{self.runner}").init({conf})
    }}"""
            phases = f"""
            access_by_lua_block {{ require("{self.runner}").access() }}
            header_filter_by_lua_block {{ require("{self.runner}").header_filter() }}
            body_filter_by_lua_block {{ require("{self.runner}").body_filter() }}
            log_by_lua_block {{ require("{self.runner}").log() }}"""
        p = self.prefix
        return f"""{load}
master_process off;
daemon off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {self.error_log_path} {self.error_log_level};
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    client_max_body_size 64m;
    client_body_buffer_size {self.client_body_buffer_size};
    lua_socket_log_errors off;
    upstream llm_upstream {{
        server {self.upstream.split("://", 1)[1]};
        keepalive 32;
    }}{plugin_http}
    {self.extra_http}
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://llm_upstream;{phases}
            {self.extra_location}
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.prefix = Path(tempfile.mkdtemp(prefix="astrocyte-nginx-"))
        (self.prefix / "logs").mkdir()
        last_error = ""
        for _ in range(5):  # the free port can be taken between probe and bind
            self.port = _free_port()
            conf_path = self.prefix / "nginx.conf"
            conf_path.write_text(self.config_text())
            self.proc = subprocess.Popen(
                [
                    nginx_binary(),
                    "-p",
                    str(self.prefix),
                    "-c",
                    str(conf_path),
                    "-e",
                    str(self.error_log_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready():
                return self
            last_error = self._reap()
            if "Address already in use" not in last_error:
                break
        self.stop()
        raise RuntimeError(f"nginx did not start: {last_error}\n{self.error_log()[-4000:]}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _reap(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.proc = None
        return (err or b"").decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            self._reap()
        if self.prefix is not None and not os.environ.get("ASTROCYTE_KEEP_NGINX_PREFIX"):
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
