"""A small emulator of the Azure API Management gateway, for the subset of policies the
Astrocyte fragments use. Test code only: APIM itself cannot run outside Azure.

It listens on a loopback port like a gateway would, matches the request to an operation of
one API, and runs the API policy's sections in order (``inbound``, ``backend``,
``outbound``, ``on-error`` after a failure), inlining ``include-fragment``. Policy
expressions are NOT interpreted in Python: each one is a method compiled from the XML by
Mono's C# compiler against a stub of APIM's ``context`` model (``csharp/``), run by a
long-lived ``mono`` process that gets the request state as JSON and returns the typed
result. HTTP calls (``send-request``, ``send-one-way-request``, ``forward-request``) are
made for real with httpx.

Emulated: ``base``, ``choose``/``when``/``otherwise``, ``set-variable``, ``set-header``
(exists-action override/skip/append/delete), ``set-body``, ``send-request`` (mode new,
timeout, ignore-error), ``send-one-way-request``, ``trace``, ``include-fragment``,
``forward-request`` (timeout, buffer-response). Named values ``{{name}}`` are resolved in
literal values. Anything else raises, so a policy cannot silently depend on an element the
emulator skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from apim_policy import (
    NAMED_VALUE_RE,
    POLICY_FILE,
    TOKEN_RE,
    PolicyFile,
    fragment_files,
    generate_csharp,
    load_policy,
    load_policy_text,
)

CSHARP_DIR = Path(__file__).resolve().parent / "csharp"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "upgrade",
    "te",
    "trailer",
}


class PolicyError(RuntimeError):
    """A policy failed at run time: APIM would switch to the on-error section."""


# -- the C# side ---------------------------------------------------------------------------


def find_toolchain() -> tuple[str, str, Path] | None:
    """(mcs, mono, Newtonsoft.Json.dll) if all are installed, else None."""
    mcs, mono = shutil.which("mcs"), shutil.which("mono")
    candidates = sorted(Path("/usr/lib/cli").glob("Newtonsoft.Json*/Newtonsoft.Json.dll"))
    if not (mcs and mono and candidates):
        return None
    return mcs, mono, candidates[-1]


def compile_expressions(policies: list[PolicyFile], out_dir: Path) -> tuple[Path, str]:
    """Compile every expression plus the stub and the runner into ``runner.exe``.

    Returns the executable and the compiler's output; raises ``CompileError`` on failure.
    """
    toolchain = find_toolchain()
    if toolchain is None:
        raise RuntimeError("mcs, mono or Newtonsoft.Json.dll is missing")
    mcs, _, newtonsoft = toolchain
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = out_dir / "Expressions.g.cs"
    generated.write_text(generate_csharp(policies), encoding="utf-8")
    shutil.copy(newtonsoft, out_dir / "Newtonsoft.Json.dll")
    exe = out_dir / "runner.exe"
    cmd = [
        mcs,
        "-langversion:7",  # the C# level APIM documents for policy expressions
        "-warnaserror+",
        "-nowarn:219",  # an assigned-but-unused local is not worth failing on
        "-target:exe",
        f"-out:{exe}",
        f"-r:{out_dir / 'Newtonsoft.Json.dll'}",
        "-r:System.Core.dll",
        "-r:System.Xml.Linq.dll",
        *(str(p) for p in sorted(CSHARP_DIR.glob("*.cs"))),
        str(generated),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise CompileError(output)
    return exe, output


class CompileError(RuntimeError):
    """mcs rejected the generated C#; the message is the compiler's output."""


class ExpressionRunner:
    """One ``mono runner.exe`` process evaluating compiled expressions, one call at a time."""

    def __init__(self, exe: Path) -> None:
        toolchain = find_toolchain()
        assert toolchain is not None
        self._proc = subprocess.Popen(
            [toolchain[1], str(exe)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=exe.parent,
        )
        self._lock = threading.Lock()
        self.calls = 0

    def evaluate(self, method: str, ctx: Mapping[str, Any]) -> dict[str, Any]:
        line = json.dumps({"expr": method, "ctx": ctx}, ensure_ascii=False)
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            reply = self._proc.stdout.readline()
            self.calls += 1
        if not reply:
            raise RuntimeError(f"expression runner died: {self._proc.stderr.read()}")
        return json.loads(reply)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# -- request state -------------------------------------------------------------------------


class Headers:
    """Case-insensitive, multi-valued, order-keeping HTTP headers."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: dict[str, tuple[str, list[str]]] = {}
        for name, value in items or []:
            self.append(name, value)

    def append(self, name: str, value: str) -> None:
        key = name.lower()
        if key in self._items:
            self._items[key][1].append(value)
        else:
            self._items[key] = (name, [value])

    def set(self, name: str, values: list[str]) -> None:
        self._items[name.lower()] = (name, list(values))

    def delete(self, name: str) -> None:
        self._items.pop(name.lower(), None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str) -> str | None:
        item = self._items.get(name.lower())
        return ",".join(item[1]) if item else None

    def as_json(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self._items.values()}

    def items(self) -> Iterator[tuple[str, str]]:
        for name, values in self._items.values():
            for value in values:
                yield name, value


@dataclass
class Message:
    """The request or the response of the exchange (or one built by send-request)."""

    headers: Headers
    body: str | None
    method: str = "GET"
    url: str = ""
    status: int = 200
    reason: str = "OK"
    body_consumed: bool = False
    body_available: bool = True


@dataclass
class Exchange:
    """Everything the policies of one client request see and change."""

    request: Message
    original_path: str
    query: str
    host: str
    operation: dict[str, str]
    response: Message | None = None
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    traces: list[dict[str, str]] = field(default_factory=list)


@dataclass
class OneWayCall:
    """A send-one-way-request the emulator dispatched (for tests to inspect)."""

    url: str
    method: str
    headers: dict[str, str]
    body: str
    status: int | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Operation:
    id: str
    method: str
    url_template: str
    name: str = ""

    def matches(self, method: str, path: str) -> bool:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(self.url_template.rstrip("/")))
        return method == self.method and re.fullmatch(pattern, path.rstrip("/")) is not None


# -- the emulator --------------------------------------------------------------------------


class ApimEmulator:
    """One API (path prefix, backend URL, operations) with one API-scope policy."""

    def __init__(
        self,
        *,
        runner: ExpressionRunner,
        policy: PolicyFile,
        fragments: Mapping[str, PolicyFile],
        named_values: Mapping[str, str],
        service_url: str,
        api_path: str,
        operations: list[Operation],
    ) -> None:
        self.runner = runner
        self.policy = policy
        self.fragments = dict(fragments)
        self.named_values = dict(named_values)
        self.service_url = service_url.rstrip("/")
        self.api_path = "/" + api_path.strip("/")
        self.operations = operations
        self.one_way_calls: list[OneWayCall] = []
        self.forwarded: list[Message] = []
        self.exchanges: list[Exchange] = []
        self.errors: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._one_way_threads: list[threading.Thread] = []

    # -- lifecycle

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.api_path}"

    def start(self) -> ApimEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else None
                status, reason, headers, payload = emulator.handle(
                    self.command, self.path, list(self.headers.items()), body
                )
                self.send_response(status, reason)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.wait_one_way()

    def wait_one_way(self, timeout: float = 15.0) -> None:
        """Wait until every dispatched send-one-way-request has finished."""
        deadline = time.monotonic() + timeout
        for thread in list(self._one_way_threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- one request

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: str | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        split = urlsplit(target)
        path = split.path
        if not (path == self.api_path or path.startswith(self.api_path + "/")):
            return _error(404, "Resource not found")
        relative = path[len(self.api_path) :] or "/"
        operation = next((op for op in self.operations if op.matches(method, relative)), None)
        if operation is None:
            return _error(404, "Resource not found")
        request_headers = Headers(headers)
        ex = Exchange(
            request=Message(
                headers=request_headers,
                body=body,
                method=method,
                url=self.service_url + relative + (f"?{split.query}" if split.query else ""),
            ),
            original_path=path,
            query=split.query,
            host=request_headers.get("Host") or "127.0.0.1",
            operation={
                "id": operation.id,
                "method": operation.method,
                "name": operation.name or operation.id,
                "url_template": operation.url_template,
            },
        )
        self.exchanges.append(ex)
        try:
            for section in ("inbound", "backend", "outbound"):
                node = self.policy.root.find(section)
                if node is not None:
                    self._run_block(node, section, ex, self.policy)
                if section == "backend" and ex.response is None:
                    raise PolicyError("backend section did not forward the request")
        except PolicyError as e:
            self.errors.append(str(e))
            node = self.policy.root.find("on-error")
            try:
                if node is not None:
                    self._run_block(node, "on-error", ex, self.policy)
            except PolicyError as nested:
                self.errors.append(f"on-error: {nested}")
            return _error(500, "Internal server error")
        response = ex.response
        assert response is not None
        out_headers = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP]
        payload = "" if response.body_consumed else (response.body or "")
        return response.status, response.reason, out_headers, payload.encode("utf-8")

    # -- policies

    def _run_block(self, node: Any, section: str, ex: Exchange, owner: PolicyFile) -> None:
        for child in node:
            if isinstance(child.tag, str):
                self._run(child, section, ex, owner)

    def _run(self, el: Any, section: str, ex: Exchange, owner: PolicyFile) -> None:
        tag = el.tag
        if tag == "base":
            if section == "backend":
                self._forward(ex, el, owner)
        elif tag == "include-fragment":
            fragment = self.fragments.get(el.get("fragment-id", ""))
            if fragment is None:
                raise PolicyError(f"unknown fragment {el.get('fragment-id')!r}")
            self._run_block(fragment.root, section, ex, fragment)
        elif tag == "choose":
            for branch in el:
                if branch.tag == "when":
                    if self._bool(branch.get("condition"), ex, owner):
                        self._run_block(branch, section, ex, owner)
                        return
                elif branch.tag == "otherwise":
                    self._run_block(branch, section, ex, owner)
                    return
        elif tag == "set-variable":
            ex.variables[el.get("name")] = self._tagged(el.get("value"), ex, owner)
        elif tag == "set-header":
            target = ex.response if section in ("outbound", "on-error") else ex.request
            assert target is not None
            self._set_header(target, el, ex, owner)
        elif tag == "set-body":
            target = ex.response if section in ("outbound", "on-error") else ex.request
            assert target is not None
            target.body = self._text(el.text, ex, owner)
            target.body_consumed = False
        elif tag == "send-request":
            self._send_request(el, ex, owner)
        elif tag == "send-one-way-request":
            self._send_one_way(el, ex, owner)
        elif tag == "trace":
            message = el.find("message")
            ex.traces.append(
                {
                    "source": el.get("source", ""),
                    "severity": el.get("severity", "verbose"),
                    "message": self._text(message.text if message is not None else "", ex, owner),
                }
            )
        elif tag == "forward-request":
            self._forward(ex, el, owner)
        else:
            raise PolicyError(f"<{tag}> is not emulated")

    def _set_header(self, target: Message, el: Any, ex: Exchange, owner: PolicyFile) -> None:
        name = el.get("name")
        action = el.get("exists-action", "override")
        if action == "delete":
            target.headers.delete(name)
            return
        values = [self._text(v.text, ex, owner) for v in el.findall("value")]
        if action == "skip" and name in target.headers:
            return
        if action == "append" and name in target.headers:
            for value in values:
                target.headers.append(name, value)
            return
        target.headers.set(name, values)

    def _build_request(self, el: Any, ex: Exchange, owner: PolicyFile) -> Message:
        if el.get("mode", "new") != "new":
            raise PolicyError("only mode=new is emulated")
        message = Message(headers=Headers(), body=None)
        for child in el:
            if child.tag == "set-url":
                message.url = self._text(child.text, ex, owner)
            elif child.tag == "set-method":
                message.method = (child.text or "").strip()
            elif child.tag == "set-header":
                self._set_header(message, child, ex, owner)
            elif child.tag == "set-body":
                message.body = self._text(child.text, ex, owner)
            else:
                raise PolicyError(f"<{child.tag}> in <{el.tag}> is not emulated")
        return message

    def _timeout(self, el: Any, ex: Exchange, owner: PolicyFile, default: int) -> int:
        raw = el.get("timeout")
        if raw is None:
            return default
        value = self._text(raw, ex, owner)
        return int(value)

    def _send_request(self, el: Any, ex: Exchange, owner: PolicyFile) -> None:
        message = self._build_request(el, ex, owner)
        timeout = self._timeout(el, ex, owner, 60)
        name = el.get("response-variable-name")
        ignore_error = el.get("ignore-error", "false") == "true"
        try:
            response = _http(message, timeout)
        except httpx.HTTPError as e:
            if not ignore_error:
                raise PolicyError(f"send-request failed: {e!r}") from e
            # APIM: with ignore-error the response variable holds null.
            ex.variables[name] = {"t": "null"}
            return
        ex.variables[name] = {
            "t": "response",
            "status": response.status,
            "reason": response.reason,
            "headers": response.headers.as_json(),
            "body": response.body,
        }

    def _send_one_way(self, el: Any, ex: Exchange, owner: PolicyFile) -> None:
        message = self._build_request(el, ex, owner)
        timeout = self._timeout(el, ex, owner, 60)
        call = OneWayCall(
            url=message.url,
            method=message.method,
            headers={k: v for k, v in message.headers.items()},
            body=message.body or "",
        )
        self.one_way_calls.append(call)

        def send() -> None:
            try:
                call.status = _http(message, timeout).status
            except httpx.HTTPError as e:
                call.error = repr(e)
            finally:
                call.done.set()

        thread = threading.Thread(target=send, daemon=True)
        self._one_way_threads.append(thread)
        thread.start()

    def _forward(self, ex: Exchange, el: Any, owner: PolicyFile) -> None:
        timeout = self._timeout(el, ex, owner, 300)
        buffered = el.get("buffer-response", "true") != "false"
        outgoing = Message(
            headers=Headers(
                [(k, v) for k, v in ex.request.headers.items() if k.lower() not in HOP_BY_HOP]
            ),
            body="" if ex.request.body_consumed else ex.request.body,
            method=ex.request.method,
            url=ex.request.url,
        )
        self.forwarded.append(outgoing)
        try:
            response = _http(outgoing, timeout)
        except httpx.HTTPError as e:
            raise PolicyError(f"backend unreachable: {e!r}") from e
        # An unbuffered response streams straight to the client: outbound cannot read it.
        response.body_available = buffered
        ex.response = response

    # -- values

    def _resolve_named(self, text: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name not in self.named_values:
                raise PolicyError(f"named value {name!r} is not defined")
            return self.named_values[name]

        return NAMED_VALUE_RE.sub(sub, text)

    def _tagged(self, raw: str | None, ex: Exchange, owner: PolicyFile) -> dict[str, Any]:
        """A value as APIM types it: an expression's result, or a literal string."""
        expr = owner.expression(raw)
        if expr is not None:
            return self._evaluate(expr.method, ex)
        if raw is not None and TOKEN_RE.search(raw):
            raise PolicyError("an expression must be the whole value")
        return {"t": "string", "v": self._resolve_named(raw or "")}

    def _text(self, raw: str | None, ex: Exchange, owner: PolicyFile) -> str:
        tagged = self._tagged(raw, ex, owner)
        kind, value = tagged["t"], tagged.get("v")
        if kind == "null":
            return ""
        if kind == "bool":
            return "True" if value else "False"
        if kind == "json":
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return str(value)

    def _bool(self, raw: str | None, ex: Exchange, owner: PolicyFile) -> bool:
        tagged = self._tagged(raw, ex, owner)
        if tagged["t"] != "bool":
            raise PolicyError(f"condition is not a bool: {tagged}")
        return bool(tagged["v"])

    def _evaluate(self, method: str, ex: Exchange) -> dict[str, Any]:
        reply = self.runner.evaluate(method, self._context(ex))
        if not reply["ok"]:
            raise PolicyError(f"expression {method} threw {reply['error']}")
        ex.request.body_consumed = ex.request.body_consumed or reply["request_body_consumed"]
        if ex.response is not None and reply["response_body_consumed"]:
            ex.response.body_consumed = True
        for name in reply["consumed_variables"]:
            ex.variables[name]["body_consumed"] = True
        ex.traces.extend({"source": "context.Trace", "message": m} for m in reply["traces"])
        return reply["result"]

    def _context(self, ex: Exchange) -> dict[str, Any]:
        url = urlsplit(ex.request.url)
        original = {
            "scheme": "http",
            "host": ex.host,
            "port": 0,
            "path": ex.original_path,
            "query": ex.query,
        }
        ctx: dict[str, Any] = {
            "request": {
                "method": ex.request.method,
                "url": {
                    "scheme": url.scheme,
                    "host": url.hostname or "",
                    "port": url.port or 0,
                    "path": url.path,
                    "query": url.query,
                },
                "original_url": original,
                "headers": ex.request.headers.as_json(),
                "body": ex.request.body,
                "body_consumed": ex.request.body_consumed,
            },
            "response": None,
            "operation": ex.operation,
            "request_id": ex.request_id,
            "variables": ex.variables,
        }
        if ex.response is not None:
            ctx["response"] = {
                "status": ex.response.status,
                "reason": ex.response.reason,
                "headers": ex.response.headers.as_json(),
                "body": ex.response.body if ex.response.body_available else None,
                "body_consumed": ex.response.body_consumed,
            }
        return ctx


def _http(message: Message, timeout: int) -> Message:
    with httpx.Client(timeout=timeout) as client:
        reply = client.request(
            message.method,
            message.url,
            headers=list(message.headers.items()),
            content=(message.body or "").encode("utf-8") if message.body is not None else None,
        )
    return Message(
        headers=Headers(list(reply.headers.multi_items())),
        body=reply.text,
        status=reply.status_code,
        reason=reply.reason_phrase,
    )


def _error(status: int, message: str) -> tuple[int, str, list[tuple[str, str]], bytes]:
    body = json.dumps({"statusCode": status, "message": message}).encode()
    return status, message, [("Content-Type", "application/json")], body


@contextmanager
def running_emulator(**kwargs: Any) -> Iterator[ApimEmulator]:
    emulator = ApimEmulator(**kwargs).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def load_all(policy_text: str | None = None) -> tuple[PolicyFile, dict[str, PolicyFile]]:
    """The API policy (the shipped example, or a variant's text) and every fragment."""
    if policy_text is None:
        policy = load_policy(POLICY_FILE)
    else:
        policy = load_policy_text(policy_text, POLICY_FILE.name)
        if policy.expressions:
            # Variants are not compiled into the runner: literal settings only.
            raise ValueError("a policy variant may not contain expressions")
    fragments = {fid: load_policy(p) for fid, p in fragment_files().items()}
    return policy, fragments
