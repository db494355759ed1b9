-- Minimal HTTP/1.1 client over ngx.socket.tcp cosockets.
--
-- Written for the Astrocyte gateway plugins because Debian (our test bed) ships
-- no lua-resty-http, and because a dependency-free client runs unchanged inside
-- Kong, APISIX and plain OpenResty. It supports exactly what the plugins need:
-- one request per call, a request body, Content-Length / chunked / read-to-close
-- responses, an overall deadline, TLS and keepalive pooling.
--
--   local http = require("astrocyte_memory.http")
--   local res, err = http.request({
--     url = "http://127.0.0.1:8080/v1/recall", method = "POST",
--     headers = { ["Content-Type"] = "application/json" },
--     body = "{...}", timeout_ms = 300,
--   })
--   -- res = { status = 200, headers = { ["content-type"] = "..." }, body = "..." }

local ngx = ngx
local tonumber = tonumber
local concat = table.concat
local lower = string.lower
local fmt = string.format

local _M = { _VERSION = "0.1.0" }

-- Pooled connections idle this long before nginx closes them.
local KEEPALIVE_IDLE_MS = 60000
local KEEPALIVE_POOL_SIZE = 32
-- Refuse to buffer absurd responses: recall/retain answers are small.
local MAX_RESPONSE_BYTES = 8 * 1024 * 1024

--- Split "http(s)://host[:port][/path?query]" into its parts.
-- @return scheme, host, port, path  or nil, err
function _M.parse_url(url)
  if type(url) ~= "string" then
    return nil, "url must be a string"
  end
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then
    return nil, "unsupported url (need http:// or https://): " .. url
  end
  local authority, path = rest:match("^([^/?#]+)(.*)$")
  if not authority then
    return nil, "url has no host: " .. url
  end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  if not host then
    return nil, "bad host in url: " .. url
  end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if path == "" then
    path = "/"
  end
  return scheme, host, port, path
end

--- Join a base URL and a path without doubling or dropping the slash.
function _M.join(base, path)
  if base:sub(-1) == "/" then
    base = base:sub(1, -2)
  end
  if path:sub(1, 1) ~= "/" then
    path = "/" .. path
  end
  return base .. path
end

local function remaining_ms(deadline)
  ngx.update_time()
  local left = (deadline - ngx.now()) * 1000
  if left < 1 then
    return nil
  end
  return left
end

-- Every socket operation gets what is left of the overall budget, so a server
-- that trickles bytes cannot stretch the call beyond timeout_ms.
local function arm(sock, deadline)
  local left = remaining_ms(deadline)
  if not left then
    return nil, "timeout"
  end
  sock:settimeout(left)
  return true
end

local function receive_line(sock, deadline)
  local ok, err = arm(sock, deadline)
  if not ok then
    return nil, err
  end
  return sock:receive("*l")
end

local function receive_bytes(sock, n, deadline)
  local ok, err = arm(sock, deadline)
  if not ok then
    return nil, err
  end
  return sock:receive(n)
end

local function read_headers(sock, deadline)
  local status_line, err = receive_line(sock, deadline)
  if not status_line then
    return nil, nil, "reading status line: " .. tostring(err)
  end
  local status = tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then
    return nil, nil, "bad status line: " .. status_line
  end
  local headers = {}
  while true do
    local line, lerr = receive_line(sock, deadline)
    if not line then
      return nil, nil, "reading headers: " .. tostring(lerr)
    end
    if line == "" then
      break
    end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = lower(name)
      if headers[name] then
        headers[name] = headers[name] .. ", " .. value
      else
        headers[name] = value
      end
    end
  end
  return status, headers
end

local function read_chunked(sock, deadline)
  local parts, total = {}, 0
  while true do
    local size_line, err = receive_line(sock, deadline)
    if not size_line then
      return nil, "reading chunk size: " .. tostring(err)
    end
    local size = tonumber(size_line:match("^%s*(%x+)"), 16)
    if not size then
      return nil, "bad chunk size: " .. size_line
    end
    if size == 0 then
      -- Trailers (rare) end with an empty line, like the header block.
      repeat
        local line, terr = receive_line(sock, deadline)
        if not line then
          return nil, "reading trailers: " .. tostring(terr)
        end
      until line == ""
      break
    end
    total = total + size
    if total > MAX_RESPONSE_BYTES then
      return nil, "response too large"
    end
    local data, derr = receive_bytes(sock, size, deadline)
    if not data then
      return nil, "reading chunk: " .. tostring(derr)
    end
    parts[#parts + 1] = data
    local crlf, cerr = receive_bytes(sock, 2, deadline)
    if not crlf then
      return nil, "reading chunk end: " .. tostring(cerr)
    end
  end
  return concat(parts)
end

local function read_to_close(sock, deadline)
  local parts, total = {}, 0
  while true do
    local ok, aerr = arm(sock, deadline)
    if not ok then
      return nil, aerr
    end
    local data, err, partial = sock:receive(8192)
    local piece = data or partial
    if piece and piece ~= "" then
      total = total + #piece
      if total > MAX_RESPONSE_BYTES then
        return nil, "response too large"
      end
      parts[#parts + 1] = piece
    end
    if not data then
      if err == "closed" then
        return concat(parts)
      end
      return nil, "reading body: " .. tostring(err)
    end
  end
end

--- Send one request and read the whole response.
-- opts: url (required), method ("GET"), headers (table), body (string),
--       timeout_ms (overall deadline, default 1000), keepalive (default true),
--       ssl_verify (default true).
-- @return { status, headers, body }  or nil, err
function _M.request(opts)
  local scheme, host, port, path = _M.parse_url(opts.url)
  if not scheme then
    return nil, host
  end
  local timeout_ms = tonumber(opts.timeout_ms) or 1000
  ngx.update_time()
  local deadline = ngx.now() + timeout_ms / 1000
  local method = opts.method or "GET"
  local body = opts.body

  local sock = ngx.socket.tcp()
  sock:settimeout(timeout_ms)
  -- The scheme is part of the pool name so a pooled TLS connection never serves
  -- a plain-HTTP request to the same host and port, or the reverse.
  local ok, err = sock:connect(host, port, { pool = scheme .. "://" .. host .. ":" .. port })
  if not ok then
    return nil, fmt("connect to %s:%d failed: %s", host, port, tostring(err))
  end
  if scheme == "https" and sock:getreusedtimes() == 0 then
    local armed, aerr = arm(sock, deadline)
    if not armed then
      sock:close()
      return nil, aerr
    end
    local session, serr = sock:sslhandshake(nil, host, opts.ssl_verify ~= false)
    if not session then
      sock:close()
      return nil, "tls handshake failed: " .. tostring(serr)
    end
  end

  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local lines = {
    method .. " " .. path .. " HTTP/1.1",
    "Host: " .. (default_port and host or (host .. ":" .. port)),
    "Connection: keep-alive",
  }
  local has = {}
  for name, value in pairs(opts.headers or {}) do
    has[lower(name)] = true
    lines[#lines + 1] = name .. ": " .. tostring(value)
  end
  if body and not has["content-length"] then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  if not has["user-agent"] then
    lines[#lines + 1] = "User-Agent: astrocyte-memory-plugin/" .. _M._VERSION
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""

  local armed, aerr = arm(sock, deadline)
  if not armed then
    sock:close()
    return nil, aerr
  end
  local sent, serr = sock:send(concat(lines, "\r\n"))
  if not sent then
    sock:close()
    return nil, "send failed: " .. tostring(serr)
  end

  local status, headers, herr = read_headers(sock, deadline)
  if not status then
    sock:close()
    return nil, herr
  end

  local resp_body, berr
  local reusable = true
  local te = headers["transfer-encoding"]
  local cl = tonumber(headers["content-length"])
  if method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
    resp_body = ""
  elseif te and lower(te):find("chunked", 1, true) then
    resp_body, berr = read_chunked(sock, deadline)
  elseif cl then
    if cl > MAX_RESPONSE_BYTES then
      resp_body, berr = nil, "response too large"
    elseif cl == 0 then
      resp_body = ""
    else
      resp_body, berr = receive_bytes(sock, cl, deadline)
      if not resp_body then
        berr = "reading body: " .. tostring(berr)
      end
    end
  else
    reusable = false
    resp_body, berr = read_to_close(sock, deadline)
  end
  if not resp_body then
    sock:close()
    return nil, berr
  end

  local conn = headers["connection"]
  if conn and lower(conn):find("close", 1, true) then
    reusable = false
  end
  if reusable and opts.keepalive ~= false then
    sock:setkeepalive(KEEPALIVE_IDLE_MS, KEEPALIVE_POOL_SIZE)
  else
    sock:close()
  end
  return { status = status, headers = headers, body = resp_body }
end

return _M
