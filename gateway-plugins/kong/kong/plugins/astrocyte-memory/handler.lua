-- astrocyte-memory: a Kong 3.x plugin that gives any OpenAI-compatible
-- /chat/completions route a memory, through the Astrocyte gateway.
--
--   access        recall on the last user message; inject the memories as a system
--                 message (fail open: on any recall problem the request goes on unchanged)
--   header_filter note the upstream status / content type / encoding
--   body_filter   keep a copy of the reply (never altered)
--   log           retain "user: ...\nassistant: ..." from a timer (off the request path)
--
-- All the logic lives in the runtime-agnostic astrocyte_memory.core (shared with the
-- APISIX plugin); this file only maps Kong's PDK onto it.
local core = require("astrocyte_memory.core")

local ngx = ngx
local kong = kong

local AstrocyteMemory = {
  -- After authentication (>= 1000) and rate limiting (910), before plugins that
  -- rewrite the body for a provider (e.g. ai-proxy at 770), so they see our messages.
  PRIORITY = 780,
  VERSION = "0.1.0",
}

-- Kong hands every request the same conf table until the plugin is reconfigured;
-- weak keys let old configs go.
local effective_confs = setmetatable({}, { __mode = "k" })

local function effective(conf)
  local c = effective_confs[conf]
  if not c then
    c = core.with_defaults(conf)
    effective_confs[conf] = c
  end
  return c
end

local function request_body()
  local body, err = kong.request.get_raw_body()
  if body then
    return body
  end
  -- Kong's get_raw_body refuses bodies larger than client_body_buffer_size
  -- (nginx spooled them to a temp file): read that file instead.
  local path = ngx.req.get_body_file()
  if not path then
    return nil, err
  end
  return core.read_body_file(path)
end

function AstrocyteMemory:access(conf)
  local method = kong.request.get_method()
  local path = kong.request.get_path()
  if not core.is_chat_completions(method, path) then
    return
  end
  local body, berr = request_body()
  if not body then
    kong.log.warn("cannot read the request body, passing it on: ", berr)
    return
  end
  local c = effective(conf)
  local state, new_body, err = core.before_upstream(c, {
    method = method,
    path = path,
    body = body,
    get_header = kong.request.get_header,
    request_id = ngx.var.request_id,
  })
  if err then
    kong.log.warn(err, " (request passed on unchanged)")
  end
  if not state then
    return
  end
  kong.ctx.plugin.state = state
  if new_body then
    kong.service.request.set_raw_body(new_body)
  end
  if state.retain then
    -- The reply must arrive uncompressed for retain to read it.
    kong.service.request.clear_header("Accept-Encoding")
  end
end

function AstrocyteMemory:header_filter(_)
  local state = kong.ctx.plugin.state
  if not state then
    return
  end
  core.note_response(
    state,
    kong.response.get_status(),
    kong.response.get_header("Content-Type"),
    kong.response.get_header("Content-Encoding")
  )
end

function AstrocyteMemory:body_filter(conf)
  local state = kong.ctx.plugin.state
  if not state or not state.retain then
    return
  end
  core.collect(effective(conf), state, ngx.arg[1])
end

function AstrocyteMemory:log(conf)
  local state = kong.ctx.plugin.state
  if not state then
    return
  end
  local c = effective(conf)
  local payload, why = core.after_upstream(c, state)
  if not payload then
    kong.log.debug("retain skipped: ", why)
    return
  end
  local ok, err = core.retain_async(c, payload, state.auth)
  if not ok then
    kong.log.warn("cannot schedule retain: ", err)
  end
end

return AstrocyteMemory
