-- Unit tests of the pure parts of astrocyte_memory.core (no nginx needed).
local core = require("astrocyte_memory.core")
local cjson = require("cjson.safe")

local function conf(overrides)
  local c = { astrocyte_url = "http://127.0.0.1:9" }
  for k, v in pairs(overrides or {}) do
    c[k] = v
  end
  return core.with_defaults(c)
end

local function headers(t)
  return function(name)
    return t[name]
  end
end

-- base64url without padding, as in JWTs
local function b64url(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for j = 1, chars do
      local idx = math.floor(n / 2 ^ (6 * (4 - j))) % 64
      out[#out + 1] = alphabet:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

local function jwt(claims)
  return b64url('{"alg":"none"}') .. "." .. b64url(cjson.encode(claims)) .. ".sig"
end

describe("config", function()
  it("fills defaults without touching the input", function()
    local input = { astrocyte_url = "http://x" }
    local c = core.with_defaults(input)
    assert.equal(300, c.timeout_ms)
    assert.equal("first", c.position)
    assert.is_true(c.retain)
    assert.is_nil(input.timeout_ms)
  end)

  it("accepts the defaults and rejects bad values", function()
    assert.is_true(core.validate(conf()))
    local bad = {
      { astrocyte_url = "ftp://x" },
      { position = "last" },
      { template = "no placeholder" },
      { timeout_ms = 0 },
      { max_results = 2.5 },
      { retain = "yes" },
      { retain_tags = { 1 } },
    }
    for _, o in ipairs(bad) do
      local ok, err = core.validate(conf(o))
      assert.is_nil(ok)
      assert.is_string(err)
    end
  end)
end)

describe("is_chat_completions", function()
  it("matches POST .../chat/completions only", function()
    assert.is_true(core.is_chat_completions("POST", "/v1/chat/completions"))
    assert.is_true(core.is_chat_completions("POST", "/openai/deployments/x/chat/completions?a=1"))
    assert.is_true(core.is_chat_completions("POST", "/v1/chat/completions/"))
    assert.is_false(core.is_chat_completions("GET", "/v1/chat/completions"))
    assert.is_false(core.is_chat_completions("POST", "/v1/completions"))
    assert.is_false(core.is_chat_completions("POST", "/v1/embeddings"))
    assert.is_false(core.is_chat_completions("POST", "/v1/chat/completions/extra"))
  end)
end)

describe("last_user_message", function()
  it("takes the last user message, string or text parts", function()
    local body = { messages = {
      { role = "system", content = "be nice" },
      { role = "user", content = "first" },
      { role = "assistant", content = "ok" },
      { role = "user", content = {
        { type = "text", text = "look at" },
        { type = "image_url", image_url = { url = "http://img" } },
        { type = "text", text = "this" },
      } },
    } }
    local text, index = core.last_user_message(body)
    assert.equal("look at\nthis", text)
    assert.equal(4, index)
  end)

  it("returns nil without user text", function()
    assert.is_nil(core.last_user_message({ messages = { { role = "system", content = "x" } } }))
    assert.is_nil(core.last_user_message({ messages = { { role = "user", content = "  " } } }))
    assert.is_nil(core.last_user_message({ prompt = "x" }))
    assert.is_nil(core.last_user_message("nope"))
  end)
end)

describe("truncate_utf8", function()
  it("never splits a multi-byte character", function()
    assert.equal("abc", core.truncate_utf8("abc", 5))
    assert.equal("h", core.truncate_utf8("h\195\169llo", 2)) -- é is 2 bytes
    assert.equal("h\195\169", core.truncate_utf8("h\195\169llo", 3))
    assert.equal("", core.truncate_utf8("\226\130\172", 2)) -- € is 3 bytes
  end)
end)

describe("bank and auth", function()
  local token = jwt({ sub = "alice", org = { bank = "org-bank" }, tenant = "t1" })

  it("prefers the header, then the claim, then the fixed bank", function()
    local c = conf({ bank = "fixed", bank_header = "X-Bank", bank_claim = "org.bank" })
    assert.equal("hdr", core.resolve_bank(c, headers({ ["X-Bank"] = "hdr",
      Authorization = "Bearer " .. token })))
    assert.equal("org-bank", core.resolve_bank(c, headers({ Authorization = "Bearer " .. token })))
    assert.equal("fixed", core.resolve_bank(c, headers({})))
    assert.equal("fixed", core.resolve_bank(c, headers({ Authorization = "Bearer garbage" })))
    assert.is_nil(core.resolve_bank(conf(), headers({})))
  end)

  it("decodes JWT claims without verifying", function()
    assert.same("alice", core.jwt_claims(token).sub)
    assert.is_nil(core.jwt_claims("not-a-jwt"))
  end)

  it("sends the API key, or forwards the caller's bearer token", function()
    assert.same({ ["X-Api-Key"] = "k" }, core.auth_headers(conf({ api_key = "k" }), headers({})))
    local fwd = conf({ api_key = "k", forward_bearer = true })
    assert.same({ Authorization = "Bearer abc" },
      core.auth_headers(fwd, headers({ Authorization = "Bearer abc" })))
    assert.same({ ["X-Api-Key"] = "k" }, core.auth_headers(fwd, headers({})))
    assert.same({}, core.auth_headers(conf(), headers({ Authorization = "Bearer abc" })))
  end)
end)

describe("recall", function()
  it("builds the request body", function()
    local c = conf({ max_results = 3, max_query_chars = 5 })
    assert.same({ query = "hello", max_results = 3, bank_id = "b" },
      core.recall_body(c, "hello world", "b"))
    assert.same({ query = "hi", max_results = 3, max_tokens = 50 },
      core.recall_body(conf({ max_results = 3, max_tokens = 50 }), "hi", nil))
  end)

  it("parses hits and reports failures", function()
    local hits = core.parse_hits(200, '{"hits":[{"text":"a","score":0.5}]}')
    assert.equal("a", hits[1].text)
    assert.same({}, core.parse_hits(200, '{"hits":[]}'))
    local _, err = core.parse_hits(401, '{"detail":"no"}')
    assert.matches("HTTP 401", err)
    _, err = core.parse_hits(401, '{"error":{"code":"invalid_api_key","message":"no"}}')
    assert.equal("recall answered HTTP 401 (invalid_api_key)", err)
    assert.same({}, core.parse_hits(404, '{"error":{"code":"bank_not_found"}}'))
    _, err = core.parse_hits(404, '{"error":{"code":"not_found"}}')
    assert.matches("HTTP 404", err)
    _, err = core.parse_hits(200, "<html>")
    assert.matches("invalid JSON", err)
    _, err = core.parse_hits(200, '{"hits":"x"}')
    assert.matches("no hits", err)
  end)
end)

describe("format_memories", function()
  local hits = {
    { text = "Alice likes teal.", score = 0.9 },
    { text = "Alice lives\n in   Oslo.", score = 0.8 },
    { text = "Alice has a cat.", score = 0.7 },
  }

  it("renders the template with one line per hit", function()
    local c = conf({ template = "Memories:\n{memories}\nEnd." })
    assert.equal("Memories:\n- Alice likes teal.\n- Alice lives in Oslo.\n- Alice has a cat.\nEnd.",
      core.format_memories(c, hits))
  end)

  it("keeps whole lines within the char budget and max_results", function()
    local c = conf({ template = "M:\n{memories}", max_chars = 45 })
    -- "M:\n" (3) + "- Alice likes teal." (19) + "\n- Alice lives in Oslo." (23) = 45
    assert.equal("M:\n- Alice likes teal.\n- Alice lives in Oslo.", core.format_memories(c, hits))
    c = conf({ template = "M:\n{memories}", max_chars = 44 })
    assert.equal("M:\n- Alice likes teal.", core.format_memories(c, hits))
    c = conf({ template = "M:\n{memories}", max_results = 1 })
    assert.equal("M:\n- Alice likes teal.", core.format_memories(c, hits))
  end)

  it("applies the approx-token budget (4 bytes per token)", function()
    local c = conf({ template = "M:\n{memories}", max_chars = 1000, max_tokens = 6 })
    assert.equal("M:\n- Alice likes teal.", core.format_memories(c, hits))
  end)

  it("cuts a first memory that alone is too long", function()
    local c = conf({ template = "{memories}", max_chars = 12 })
    assert.equal("- Alice l...", core.format_memories(c, hits))
  end)

  it("gives nil when nothing is injected", function()
    assert.is_nil(core.format_memories(conf(), {}))
    assert.is_nil(core.format_memories(conf(), { { text = "  " }, { score = 1 } }))
    assert.is_nil(core.format_memories(conf({ template = "long header {memories}",
      max_chars = 10 }), hits))
  end)
end)

describe("inject and splice", function()
  local raw = '{"model":"m","tools":[],"seed":12345678901234567,'
    .. '"messages":[{"role":"system","content":"sys [x] \\"q\\""},'
    .. '{"role":"user","content":"u1"},{"role":"assistant","content":"a {"},'
    .. ' {"role":"user","content":[{"type":"text","text":"u2"}]}],"n":1}'

  it("inject puts the message first or before the last user message", function()
    local body = cjson.decode(raw)
    core.inject(body, "MEM", "first")
    assert.same({ role = "system", content = "MEM" }, body.messages[1])
    body = cjson.decode(raw)
    core.inject(body, "MEM", "before_last_user")
    assert.same({ role = "system", content = "MEM" }, body.messages[4])
    assert.equal("user", body.messages[5].role)
  end)

  it("splice inserts into the raw text and leaves the rest byte-identical", function()
    local msg = { role = "system", content = "MEM" }
    local first = core.splice_message(raw, 1, msg)
    local enc = cjson.encode(msg)
    assert.equal(raw:gsub('"messages":%[', '"messages":[' .. enc:gsub("%%", "%%%%") .. ","), first)
    local decoded = cjson.decode(first)
    assert.equal("MEM", decoded.messages[1].content)
    assert.equal(5, #decoded.messages)

    local body = cjson.decode(raw)
    local at = core.insert_index(body, "before_last_user")
    assert.equal(4, at)
    local spliced = core.splice_message(raw, at, msg)
    decoded = cjson.decode(spliced)
    assert.equal("MEM", decoded.messages[4].content)
    assert.equal("user", decoded.messages[5].role)
    -- What cjson would have mangled survives: the empty array and the big integer.
    assert.matches('"tools":%[%]', spliced)
    assert.matches('"seed":12345678901234567', spliced, 1, true)
  end)

  it("splice handles whitespace, nested keys and errors", function()
    local pretty = '{\n  "x": {"messages": "not this"},\n  "messages" : [ ]\n}'
    local out = core.splice_message(pretty, 1, { role = "system", content = "M" })
    assert.equal(1, #cjson.decode(out).messages)
    assert.equal("not this", cjson.decode(out).x.messages)
    assert.is_nil(core.splice_message("[1]", 1, {}))
    assert.is_nil(core.splice_message('{"messages":[{"a":1}]}', 3, {}))
    assert.is_nil(core.splice_message('{"model":"m"}', 1, {}))
  end)
end)

describe("replies", function()
  local function sse(pieces)
    local out = {}
    for _, p in ipairs(pieces) do
      out[#out + 1] = "data: " .. cjson.encode({ choices = { { index = 0,
        delta = { content = p } } } }) .. "\n\n"
    end
    out[#out + 1] = "data: [DONE]\n\n"
    return table.concat(out)
  end

  it("assembles SSE deltas however the chunks are split", function()
    local stream = 'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
      .. sse({ "Hel", "lo", " there" })
    assert.equal("Hello there", core.sse_reply(stream))
    local chunks = {}
    for i = 1, #stream, 7 do
      chunks[#chunks + 1] = stream:sub(i, i + 6)
    end
    assert.equal("Hello there", core.sse_reply(chunks))
    assert.equal("Hello there", core.sse_reply((stream:gsub("\n", "\r\n"))))
  end)

  it("gives nil for a stream without content deltas", function()
    local tool = 'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c"}]}}]}\n\n'
      .. "data: [DONE]\n\n"
    assert.is_nil(core.sse_reply(tool))
    assert.is_nil(core.sse_reply(""))
  end)

  it("reads a non-streamed reply", function()
    local body = '{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"}}]}'
    assert.equal("Hi!", core.json_reply(body))
    assert.equal("Hi!", core.assistant_reply(body, false))
    assert.is_nil(core.json_reply('{"choices":[{"message":{"content":null}}]}'))
    assert.is_nil(core.json_reply("oops"))
  end)

  it("builds the retain payload", function()
    local p = core.retain_payload(conf({ retain_tags = { "chat" } }), "Q?", "A.", "b", "rid1")
    assert.same({
      content = "user: Q?\nassistant: A.",
      content_type = "conversation",
      metadata = { source = "astrocyte-memory-plugin" },
      bank_id = "b",
      tags = { "chat" },
      idempotency_key = "gw-rid1",
    }, p)
    assert.same({ content = "user: Q\nassistant: A", content_type = "conversation",
      metadata = { source = "astrocyte-memory-plugin" } },
      core.retain_payload(conf(), "Q", "A", nil, nil))
  end)
end)

describe("phase helpers without I/O", function()
  it("ignores requests that are not chat completions with user text", function()
    local c = conf()
    assert.is_nil(core.before_upstream(c, { method = "POST", path = "/v1/embeddings",
      body = "{}", get_header = headers({}) }))
    local state, new_body, err = core.before_upstream(c, { method = "POST",
      path = "/v1/chat/completions", body = "not json", get_header = headers({}) })
    assert.is_nil(state)
    assert.is_nil(new_body)
    assert.matches("not a JSON object", err)
    assert.is_nil(core.before_upstream(c, { method = "POST", path = "/v1/chat/completions",
      body = '{"messages":[{"role":"system","content":"x"}]}', get_header = headers({}) }))
  end)

  local function state(extra)
    local s = { user_text = "Q", retain = true, chunks = {}, size = 0, bank = "b" }
    for k, v in pairs(extra or {}) do
      s[k] = v
    end
    return s
  end
  local reply = '{"choices":[{"message":{"role":"assistant","content":"A"}}]}'

  it("collects the reply and builds the payload", function()
    local c, s = conf(), state()
    core.note_response(s, 200, "application/json", nil)
    core.collect(c, s, reply:sub(1, 10))
    core.collect(c, s, reply:sub(11))
    local payload = core.after_upstream(c, s)
    assert.equal("user: Q\nassistant: A", payload.content)
    assert.equal("b", payload.bank_id)
  end)

  it("detects SSE from the content type", function()
    local s = state()
    core.note_response(s, 200, "text/event-stream; charset=utf-8", nil)
    assert.is_true(s.stream)
  end)

  it("skips retain when it cannot or must not retain", function()
    local c = conf()
    local cases = {
      { state({ retain = false }), "disabled" },
      { state({ status = 500 }), "HTTP 500" },
      { state({ content_encoding = "gzip" }), "gzip" },
      { state(), "no assistant text" },
    }
    for _, case in ipairs(cases) do
      local s = case[1]
      if s.retain and case[2] ~= "no assistant text" then
        core.collect(c, s, reply)
      end
      local payload, why = core.after_upstream(c, s)
      assert.is_nil(payload)
      assert.matches(case[2], why)
    end
    local s = state()
    core.collect(conf({ max_reply_bytes = 10 }), s, reply)
    local payload, why = core.after_upstream(c, s)
    assert.is_nil(payload)
    assert.matches("max_reply_bytes", why)
  end)
end)
