-- Shared, runtime-agnostic logic of the Astrocyte memory plugins for Kong and
-- APISIX: recall before an OpenAI-compatible /chat/completions call, inject the
-- memories as a system message, retain the exchange afterwards.
--
-- It never touches Kong's PDK or apisix.core, so both plugins (and the plain
-- nginx test harness) share it unchanged. Pure functions take plain Lua values;
-- only recall_request / retain_request / retain_async do I/O (cosockets via
-- astrocyte_memory.http, timers via ngx.timer.at). See ../README.md for the API.

local http = require("astrocyte_memory.http")

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local concat = table.concat
local insert = table.insert
local lower = string.lower

local _M = { _VERSION = "0.1.0" }

-- A private cjson instance so our settings never leak into the host gateway's.
local json = require("cjson.safe").new()
-- Re-encoding the client's body must not turn `"tools": []` into `{}` (OpenResty's
-- cjson can tag decoded arrays; stock lua-cjson cannot) nor round large integers.
if json.decode_array_with_array_mt then
  json.decode_array_with_array_mt(true)
end
if json.encode_escape_forward_slash then
  json.encode_escape_forward_slash(false)
end
pcall(json.encode_number_precision, 16)
_M.null = json.null

local array_mt = json.array_mt

_M.PLACEHOLDER = "{memories}"

_M.DEFAULTS = {
  astrocyte_url = nil, -- required, e.g. "http://127.0.0.1:8080"
  api_key = nil, -- sent as X-Api-Key
  forward_bearer = false, -- forward the caller's Authorization: Bearer ... instead
  bank = nil, -- fixed bank id
  bank_header = nil, -- request header naming the bank (wins over bank)
  bank_claim = nil, -- claim of the caller's bearer JWT naming the bank ("a.b" = nested)
  timeout_ms = 300, -- whole recall call; on expiry the request goes on unchanged
  retain_timeout_ms = 3000, -- whole retain call (runs after the response)
  position = "first", -- "first" | "before_last_user"
  template = "Relevant memories from earlier conversations:\n{memories}",
  max_chars = 2000, -- budget for the whole injected system message (bytes)
  max_tokens = nil, -- optional budget in approx tokens (4 bytes each); the smaller wins
  max_results = 5,
  max_query_chars = 2000, -- longer user messages are cut before recall
  retain = true,
  retain_tags = nil, -- array of strings added to retained memories
  max_reply_bytes = 1048576, -- replies larger than this are not retained
}

local POSITIONS = { first = true, before_last_user = true }

local function shallow_copy(t)
  local out = {}
  for k, v in pairs(t or {}) do
    out[k] = v
  end
  return out
end

local function is_set(v)
  return v ~= nil and v ~= json.null and v ~= ""
end

--- conf with every unset field taken from DEFAULTS (a new table).
function _M.with_defaults(conf)
  local out = shallow_copy(conf)
  for k, v in pairs(_M.DEFAULTS) do
    if not is_set(out[k]) then
      out[k] = v
    end
  end
  return out
end

local function positive_int(conf, name)
  local v = conf[name]
  if v == nil then
    return true
  end
  if type(v) ~= "number" or v < 1 or v % 1 ~= 0 then
    return nil, name .. " must be a positive integer"
  end
  return true
end

--- Validate a conf (after with_defaults). @return true | nil, err
function _M.validate(conf)
  if type(conf) ~= "table" then
    return nil, "conf must be a table"
  end
  local url = conf.astrocyte_url
  if type(url) ~= "string" or not http.parse_url(url) then
    return nil, "astrocyte_url must be an http(s) URL"
  end
  for _, name in ipairs({ "api_key", "bank", "bank_header", "bank_claim", "template" }) do
    if conf[name] ~= nil and type(conf[name]) ~= "string" then
      return nil, name .. " must be a string"
    end
  end
  for _, name in ipairs({ "forward_bearer", "retain" }) do
    if conf[name] ~= nil and type(conf[name]) ~= "boolean" then
      return nil, name .. " must be a boolean"
    end
  end
  for _, name in ipairs({
    "timeout_ms",
    "retain_timeout_ms",
    "max_chars",
    "max_tokens",
    "max_results",
    "max_query_chars",
    "max_reply_bytes",
  }) do
    local ok, err = positive_int(conf, name)
    if not ok then
      return nil, err
    end
  end
  if conf.position ~= nil and not POSITIONS[conf.position] then
    return nil, 'position must be "first" or "before_last_user"'
  end
  if conf.template ~= nil and not conf.template:find(_M.PLACEHOLDER, 1, true) then
    return nil, "template must contain " .. _M.PLACEHOLDER
  end
  if conf.retain_tags ~= nil then
    if type(conf.retain_tags) ~= "table" then
      return nil, "retain_tags must be an array of strings"
    end
    for _, tag in ipairs(conf.retain_tags) do
      if type(tag) ~= "string" then
        return nil, "retain_tags must be an array of strings"
      end
    end
  end
  return true
end

function _M.decode_json(s)
  if type(s) ~= "string" then
    return nil, "not a string"
  end
  return json.decode(s)
end

function _M.encode_json(v)
  return json.encode(v)
end

--- POST to a path ending in /chat/completions (query string ignored).
function _M.is_chat_completions(method, path)
  if method ~= "POST" or type(path) ~= "string" then
    return false
  end
  path = path:gsub("[?#].*$", "")
  path = path:gsub("/+$", "")
  return path:sub(-#"/chat/completions") == "/chat/completions"
end

-- OpenAI content is a string or an array of parts; only text parts count.
local function content_text(content)
  if type(content) == "string" then
    return content
  end
  if type(content) ~= "table" then
    return nil
  end
  local texts = {}
  for _, part in ipairs(content) do
    if type(part) == "table" and part.type == "text" and type(part.text) == "string" then
      texts[#texts + 1] = part.text
    end
  end
  if #texts == 0 then
    return nil
  end
  return concat(texts, "\n")
end
_M.content_text = content_text

--- Text of the last message with role "user". @return text, index | nil
function _M.last_user_message(body)
  if type(body) ~= "table" or type(body.messages) ~= "table" then
    return nil
  end
  local messages = body.messages
  for i = #messages, 1, -1 do
    local m = messages[i]
    if type(m) == "table" and m.role == "user" then
      local text = content_text(m.content)
      if text and text:find("%S") then
        return text, i
      end
      return nil
    end
  end
  return nil
end

--- Cut s to at most n bytes without splitting a UTF-8 sequence.
function _M.truncate_utf8(s, n)
  if #s <= n then
    return s
  end
  local cut = n
  -- Step back over continuation bytes (10xxxxxx) to a sequence start.
  while cut > 0 do
    local b = s:byte(cut + 1)
    if not b or b < 0x80 or b >= 0xC0 then
      break
    end
    cut = cut - 1
  end
  return s:sub(1, cut)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Outside OpenResty (unit tests) there is no ngx.decode_base64.
local function b64_decode_pure(s)
  s = s:gsub("=+$", "")
  if s:find("[^%w%+/]") then
    return nil
  end
  local bits = s:gsub(".", function(c)
    local v = B64:find(c, 1, true) - 1
    local out = {}
    for b = 6, 1, -1 do
      out[#out + 1] = math.floor(v / 2 ^ (b - 1)) % 2
    end
    return concat(out)
  end)
  -- Padding leaves fewer than 8 trailing bits: they are not a byte.
  bits = bits:sub(1, #bits - #bits % 8)
  return (bits:gsub("%d%d%d%d%d%d%d%d", function(byte)
    return string.char(tonumber(byte, 2))
  end))
end

local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  local pad = #s % 4
  if pad == 2 then
    s = s .. "=="
  elseif pad == 3 then
    s = s .. "="
  elseif pad == 1 then
    return nil
  end
  if ngx and ngx.decode_base64 then
    return ngx.decode_base64(s)
  end
  return b64_decode_pure(s)
end

--- Claims of a JWT, decoded but NOT verified: only used to pick a bank; the
-- Astrocyte gateway verifies the token itself when forward_bearer is on.
function _M.jwt_claims(token)
  if type(token) ~= "string" then
    return nil
  end
  local payload = token:match("^[^.]+%.([^.]+)%.")
  if not payload then
    return nil
  end
  local raw = b64url_decode(payload)
  if not raw then
    return nil
  end
  local claims = json.decode(raw)
  if type(claims) ~= "table" then
    return nil
  end
  return claims
end

local function bearer_token(get_header)
  local auth = get_header("Authorization")
  if type(auth) == "table" then
    auth = auth[1]
  end
  if type(auth) ~= "string" then
    return nil
  end
  return auth:match("^%s*[Bb]earer%s+(%S+)%s*$")
end

--- Bank for this request: bank_header, then bank_claim, then bank (nil = the
-- caller's default bank on the Astrocyte side).
-- get_header(name) -> string | nil
function _M.resolve_bank(conf, get_header)
  if is_set(conf.bank_header) then
    local v = get_header(conf.bank_header)
    if type(v) == "table" then
      v = v[1]
    end
    if type(v) == "string" and v ~= "" then
      return v
    end
  end
  if is_set(conf.bank_claim) then
    local claims = _M.jwt_claims(bearer_token(get_header))
    local v = claims
    for key in conf.bank_claim:gmatch("[^.]+") do
      if type(v) ~= "table" then
        v = nil
        break
      end
      v = v[key]
    end
    if type(v) == "string" and v ~= "" then
      return v
    end
    if type(v) == "number" then
      return tostring(v)
    end
  end
  if is_set(conf.bank) then
    return conf.bank
  end
  return nil
end

--- Headers authenticating us to the Astrocyte gateway (possibly empty).
function _M.auth_headers(conf, get_header)
  local headers = {}
  local token = conf.forward_bearer and bearer_token(get_header)
  if token then
    headers["Authorization"] = "Bearer " .. token
  elseif is_set(conf.api_key) then
    headers["X-Api-Key"] = conf.api_key
  end
  return headers
end

--- JSON body of POST /v1/recall.
function _M.recall_body(conf, query, bank)
  local body = {
    query = _M.truncate_utf8(query, conf.max_query_chars or _M.DEFAULTS.max_query_chars),
    max_results = conf.max_results or _M.DEFAULTS.max_results,
  }
  if bank then
    body.bank_id = bank
  end
  if conf.max_tokens then
    body.max_tokens = conf.max_tokens
  end
  return body
end

--- Hits out of a recall response. @return hits (array, maybe empty) | nil, err
-- (404 bank_not_found counts as no hits, not as an error).
function _M.parse_hits(status, raw)
  local decoded = json.decode(raw or "")
  if status ~= 200 then
    local code = type(decoded) == "table" and type(decoded.error) == "table"
      and decoded.error.code
    -- A bank that does not exist yet (a new user's) simply has no memories.
    if status == 404 and code == "bank_not_found" then
      return {}
    end
    local why = "recall answered HTTP " .. tostring(status)
    if type(code) == "string" then
      why = why .. " (" .. code .. ")"
    end
    return nil, why
  end
  if type(decoded) ~= "table" then
    return nil, "recall answered with invalid JSON"
  end
  local hits = decoded.hits
  if hits == nil or hits == json.null then
    return {}
  end
  if type(hits) ~= "table" then
    return nil, "recall answer has no hits array"
  end
  return hits
end

local function post_json(conf, path, payload, headers, timeout_ms)
  local h = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  for k, v in pairs(headers or {}) do
    h[k] = v
  end
  local body, eerr = json.encode(payload)
  if not body then
    return nil, "encoding request: " .. tostring(eerr)
  end
  return http.request({
    url = http.join(conf.astrocyte_url, path),
    method = "POST",
    headers = h,
    body = body,
    timeout_ms = timeout_ms,
  })
end

--- POST /v1/recall. @return hits | nil, err
function _M.recall_request(conf, query, bank, auth_headers)
  local res, err = post_json(
    conf,
    "/v1/recall",
    _M.recall_body(conf, query, bank),
    auth_headers,
    conf.timeout_ms or _M.DEFAULTS.timeout_ms
  )
  if not res then
    return nil, "recall failed: " .. tostring(err)
  end
  return _M.parse_hits(res.status, res.body)
end

local function one_line(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

--- The system message for these hits, or nil if none fits. Deterministic:
-- hits keep their order (the gateway ranks them), each becomes "- <text>" on one
-- line, whole lines are added while the message stays within the budget
-- (min(max_chars, 4 * max_tokens) bytes); if not even the first line fits, it is
-- cut (UTF-8 safe) and ends with "...".
function _M.format_memories(conf, hits)
  if type(hits) ~= "table" then
    return nil
  end
  local template = conf.template or _M.DEFAULTS.template
  local budget = conf.max_chars or _M.DEFAULTS.max_chars
  if conf.max_tokens then
    budget = math.min(budget, conf.max_tokens * 4)
  end
  local max_results = conf.max_results or _M.DEFAULTS.max_results
  local s, e = template:find(_M.PLACEHOLDER, 1, true)
  if not s then
    return nil
  end
  local head, tail = template:sub(1, s - 1), template:sub(e + 1)
  local room = budget - #head - #tail
  if room <= 0 then
    return nil
  end

  local lines, used = {}, 0
  for _, hit in ipairs(hits) do
    if #lines >= max_results then
      break
    end
    local text = type(hit) == "table" and hit.text
    if type(text) == "string" then
      text = one_line(text)
      if text ~= "" then
        local line = "- " .. text
        local cost = #line + (#lines > 0 and 1 or 0)
        if used + cost <= room then
          lines[#lines + 1] = line
          used = used + cost
        elseif #lines == 0 then
          if room > #"- ..." then
            lines[1] = _M.truncate_utf8(line, room - 3) .. "..."
          end
          break
        else
          break
        end
      end
    end
  end
  if #lines == 0 then
    return nil
  end
  return head .. concat(lines, "\n") .. tail
end

-- A tiny JSON text scanner, just enough to find where array elements start.
local function skip_ws(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

-- Index just past the string starting at s[i] == '"'.
local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if not k then
      return nil
    end
    if s:byte(k) == 92 then -- backslash: skip the escaped byte
      j = k + 2
    else
      return k + 1
    end
  end
end

-- Index just past the JSON value starting at s[i].
local function skip_value(s, i)
  local c = s:sub(i, i)
  if c == '"' then
    return skip_string(s, i)
  end
  if c == "{" or c == "[" then
    local depth, j = 0, i
    while true do
      local k = s:find('[%[%]{}"]', j)
      if not k then
        return nil
      end
      local ch = s:sub(k, k)
      if ch == '"' then
        j = skip_string(s, k)
        if not j then
          return nil
        end
      else
        if ch == "{" or ch == "[" then
          depth = depth + 1
        else
          depth = depth - 1
        end
        j = k + 1
        if depth == 0 then
          return j
        end
      end
    end
  end
  local k = s:find("[,}%] \t\r\n]", i)
  return k or #s + 1
end

--- Insert `message` (a table) into the raw JSON body's top-level "messages" array
-- before element `index`, leaving all other bytes untouched.
-- @return new raw body | nil, err
function _M.splice_message(raw, index, message)
  local encoded, eerr = json.encode(message)
  if not encoded then
    return nil, eerr
  end
  local i = skip_ws(raw, 1)
  if raw:sub(i, i) ~= "{" then
    return nil, "body is not a JSON object"
  end
  i = skip_ws(raw, i + 1)
  local array_at
  -- cjson keeps the last of duplicate keys, so the last "messages" wins here too.
  while raw:sub(i, i) == '"' do
    local key_end = skip_string(raw, i)
    if not key_end then
      return nil, "unterminated key"
    end
    local key = raw:sub(i + 1, key_end - 2)
    i = skip_ws(raw, key_end)
    if raw:sub(i, i) ~= ":" then
      return nil, "expected ':'"
    end
    i = skip_ws(raw, i + 1)
    if key == "messages" and raw:sub(i, i) == "[" then
      array_at = i
    end
    i = skip_value(raw, i)
    if not i then
      return nil, "unterminated value"
    end
    i = skip_ws(raw, i)
    if raw:sub(i, i) == "," then
      i = skip_ws(raw, i + 1)
    end
  end
  if not array_at then
    return nil, "no messages array"
  end
  local pos = skip_ws(raw, array_at + 1)
  local n = 1
  while n < index do
    if raw:sub(pos, pos) == "]" then
      return nil, "messages has fewer elements than the insert index"
    end
    pos = skip_value(raw, pos)
    if not pos then
      return nil, "unterminated message"
    end
    pos = skip_ws(raw, pos)
    if raw:sub(pos, pos) ~= "," then
      return nil, "messages has fewer elements than the insert index"
    end
    pos = skip_ws(raw, pos + 1)
    n = n + 1
  end
  local sep = raw:sub(pos, pos) == "]" and "" or ","
  return raw:sub(1, pos - 1) .. encoded .. sep .. raw:sub(pos)
end

--- Where inject() puts the system message for `position` (1-based index).
function _M.insert_index(body, position)
  if position == "before_last_user" then
    local messages = body.messages
    for i = #messages, 1, -1 do
      local m = messages[i]
      if type(m) == "table" and m.role == "user" then
        return i
      end
    end
  end
  return 1
end

--- Insert {role="system", content=message} into body.messages (in place).
-- position "first": before all messages; "before_last_user": right before the
-- last user message (falls back to first when there is none).
function _M.inject(body, system_message, position)
  local msg = { role = "system", content = system_message }
  insert(body.messages, _M.insert_index(body, position), msg)
  return body
end

--- Assistant text of a streamed (SSE) reply: the concatenated
-- choices[1].delta.content of every "data:" event. chunks: a string or an array
-- of strings split anywhere. @return text | nil when no content delta was seen
function _M.sse_reply(chunks)
  local raw = type(chunks) == "table" and concat(chunks) or chunks
  if type(raw) ~= "string" then
    return nil
  end
  local parts = {}
  for line in (raw .. "\n"):gmatch("([^\n]*)\n") do
    local data = line:match("^data:%s?(.-)%s*$")
    if data and data ~= "" and data ~= "[DONE]" then
      local event = json.decode(data)
      local choice = type(event) == "table" and type(event.choices) == "table"
        and event.choices[1]
      local delta = type(choice) == "table" and choice.delta
      local piece = type(delta) == "table" and delta.content
      if type(piece) == "string" then
        parts[#parts + 1] = piece
      end
    end
  end
  if #parts == 0 then
    return nil
  end
  return concat(parts)
end

--- Assistant text of a non-streamed reply (choices[1].message.content).
function _M.json_reply(raw)
  local decoded = json.decode(raw or "")
  if type(decoded) ~= "table" or type(decoded.choices) ~= "table" then
    return nil
  end
  local choice = decoded.choices[1]
  local message = type(choice) == "table" and choice.message
  if type(message) ~= "table" then
    return nil
  end
  return content_text(message.content)
end

--- Assistant text of either kind of reply.
function _M.assistant_reply(raw, streaming)
  if streaming then
    return _M.sse_reply(raw)
  end
  return _M.json_reply(raw)
end

--- JSON body of POST /v1/retain for one exchange.
function _M.retain_payload(conf, user_text, reply_text, bank, request_id)
  local payload = {
    content = "user: " .. user_text .. "\nassistant: " .. reply_text,
    content_type = "conversation",
    metadata = { source = "astrocyte-memory-plugin" },
  }
  if bank then
    payload.bank_id = bank
  end
  if type(conf.retain_tags) == "table" and #conf.retain_tags > 0 then
    payload.tags = setmetatable(shallow_copy(conf.retain_tags), array_mt)
  end
  if is_set(request_id) then
    -- A retry of the same proxied request then stores nothing twice.
    payload.idempotency_key = "gw-" .. tostring(request_id)
  end
  return payload
end

--- POST /v1/retain. @return true | nil, err
function _M.retain_request(conf, payload, auth_headers)
  local res, err = post_json(
    conf,
    "/v1/retain",
    payload,
    auth_headers,
    conf.retain_timeout_ms or _M.DEFAULTS.retain_timeout_ms
  )
  if not res then
    return nil, "retain failed: " .. tostring(err)
  end
  if res.status < 200 or res.status >= 300 then
    return nil, "retain answered HTTP " .. tostring(res.status)
  end
  return true
end

--- Run retain_request from a zero-delay timer: cosockets are disabled in the
-- log and body_filter phases, and the client must not wait for it. Failures are
-- logged (ngx.log WARN) and otherwise ignored.
function _M.retain_async(conf, payload, auth_headers)
  return ngx.timer.at(0, function(premature)
    if premature then
      return
    end
    local ok, err = _M.retain_request(conf, payload, auth_headers)
    if not ok then
      ngx.log(ngx.WARN, "[astrocyte-memory] ", err)
    end
  end)
end

--- Whole body of a request whose body nginx spooled to a temp file.
function _M.read_body_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, "cannot open request body file: " .. tostring(err)
  end
  local data = f:read("*a")
  f:close()
  return data
end

-- Phase helpers: the plugins call one per phase and keep `state` in their
-- per-request context (kong.ctx.plugin / APISIX ctx).

--- Access phase. req = { method, path, body (raw string), get_header(name),
-- request_id? }.
-- @return state, new_body, err
--   state: nil when the request is none of our business (not chat completions,
--          no JSON body, no user text); otherwise pass it to the later phases.
--   new_body: the JSON to send upstream when memories were injected, else nil.
--   err: why recall failed (the request then goes on unchanged) - log it.
function _M.before_upstream(conf, req)
  if not _M.is_chat_completions(req.method, req.path) then
    return nil
  end
  if type(req.body) ~= "string" or req.body == "" then
    return nil, nil, "chat completions request without a body"
  end
  local body = json.decode(req.body)
  if type(body) ~= "table" or type(body.messages) ~= "table" then
    return nil, nil, "chat completions body is not a JSON object with messages"
  end
  local user_text = _M.last_user_message(body)
  if not user_text then
    return nil
  end
  local get_header = req.get_header
  local state = {
    user_text = user_text,
    bank = _M.resolve_bank(conf, get_header),
    auth = _M.auth_headers(conf, get_header),
    stream = body.stream == true,
    request_id = req.request_id,
    retain = conf.retain ~= false,
    chunks = {},
    size = 0,
  }
  local hits, err = _M.recall_request(conf, user_text, state.bank, state.auth)
  if not hits then
    return state, nil, err
  end
  local message = _M.format_memories(conf, hits)
  if not message then
    return state, nil, nil
  end
  local at = _M.insert_index(body, conf.position or _M.DEFAULTS.position)
  local encoded, eerr = _M.splice_message(req.body, at, { role = "system", content = message })
  if not encoded then
    return state, nil, "cannot insert the memories into the body: " .. tostring(eerr)
  end
  state.injected = message
  return state, encoded, nil
end

--- Header-filter phase: remember what the upstream answered.
function _M.note_response(state, status, content_type, content_encoding)
  state.status = tonumber(status)
  state.content_type = content_type
  state.content_encoding = content_encoding
  if type(content_type) == "string" and lower(content_type):find("text/event-stream", 1, true)
  then
    state.stream = true
  end
end

--- Body-filter phase: keep a copy of a response chunk (until max_reply_bytes).
function _M.collect(conf, state, chunk)
  if not state.retain or state.overflow or type(chunk) ~= "string" or chunk == "" then
    return
  end
  state.size = state.size + #chunk
  if state.size > (conf.max_reply_bytes or _M.DEFAULTS.max_reply_bytes) then
    state.overflow = true
    state.chunks = {}
    return
  end
  state.chunks[#state.chunks + 1] = chunk
end

--- Log phase: the retain payload for this exchange. @return payload | nil, reason
function _M.after_upstream(conf, state)
  if not state.retain then
    return nil, "retain disabled"
  end
  if state.status and (state.status < 200 or state.status >= 300) then
    return nil, "upstream answered HTTP " .. tostring(state.status)
  end
  if state.overflow then
    return nil, "reply larger than max_reply_bytes"
  end
  local enc = state.content_encoding
  if is_set(enc) and lower(enc) ~= "identity" then
    return nil, "reply is " .. enc .. "-encoded"
  end
  local reply = _M.assistant_reply(concat(state.chunks), state.stream)
  if not reply or not reply:find("%S") then
    return nil, "no assistant text in the reply"
  end
  return _M.retain_payload(conf, state.user_text, reply, state.bank, state.request_id)
end

return _M
