-- APISIX plugin "astrocyte-memory": recall memories from an Astrocyte gateway
-- before an OpenAI-compatible /chat/completions call, inject them as a system
-- message, and retain the exchange after the reply. All request/response logic
-- lives in the shared astrocyte_memory.core module (also used by the Kong
-- plugin); this file only adapts it to APISIX's phases and apisix.core calls.

local core = require("apisix.core")
local memory = require("astrocyte_memory.core")

local ngx = ngx

local plugin_name = "astrocyte-memory"

local schema = {
    type = "object",
    properties = {
        astrocyte_url = { type = "string", minLength = 1 },
        api_key = { type = "string", minLength = 1 },
        forward_bearer = { type = "boolean", default = false },
        bank = { type = "string", minLength = 1 },
        bank_header = { type = "string", minLength = 1 },
        bank_claim = { type = "string", minLength = 1 },
        timeout_ms = { type = "integer", minimum = 1, maximum = 60000,
                       default = memory.DEFAULTS.timeout_ms },
        retain_timeout_ms = { type = "integer", minimum = 1, maximum = 600000,
                              default = memory.DEFAULTS.retain_timeout_ms },
        position = { type = "string", enum = { "first", "before_last_user" },
                     default = memory.DEFAULTS.position },
        template = { type = "string", minLength = 1, default = memory.DEFAULTS.template },
        max_chars = { type = "integer", minimum = 1, default = memory.DEFAULTS.max_chars },
        max_tokens = { type = "integer", minimum = 1 },
        max_results = { type = "integer", minimum = 1, maximum = 100,
                        default = memory.DEFAULTS.max_results },
        max_query_chars = { type = "integer", minimum = 1,
                            default = memory.DEFAULTS.max_query_chars },
        retain = { type = "boolean", default = true },
        retain_tags = { type = "array", items = { type = "string", minLength = 1 } },
        max_reply_bytes = { type = "integer", minimum = 1,
                            default = memory.DEFAULTS.max_reply_bytes },
    },
    required = { "astrocyte_url" },
}

local _M = {
    version = 0.1,
    -- Below the authentication plugins (2000+), so a forwarded bearer has been
    -- checked first, and above ai-proxy (999), which sends the body upstream itself.
    priority = 1065,
    name = plugin_name,
    schema = schema,
}

function _M.check_schema(conf)
    local ok, err = core.schema.check(schema, conf)
    if not ok then
        return false, err
    end
    -- What JSON schema cannot say: an http(s) URL and the {memories} placeholder.
    local valid, verr = memory.validate(conf)
    if not valid then
        return false, verr
    end
    return true
end

local function state_of(ctx)
    return ctx.astrocyte_memory
end

function _M.access(conf, ctx)
    local method = core.request.get_method()
    local path = ctx.var.uri
    if not memory.is_chat_completions(method, path) then
        return
    end

    -- get_body also reads bodies nginx spooled to a temp file (larger than
    -- client_body_buffer_size).
    local body, berr = core.request.get_body(nil, ctx)
    if not body then
        core.log.warn("[astrocyte-memory] cannot read the request body: ", berr or "empty")
        return
    end

    local state, new_body, err = memory.before_upstream(conf, {
        method = method,
        path = path,
        body = body,
        get_header = function(name)
            return core.request.header(ctx, name)
        end,
        request_id = ctx.var.request_id,
    })
    if err then
        -- Fail open: the request goes on exactly as the client sent it.
        core.log.warn("[astrocyte-memory] ", err)
    end
    if not state then
        return
    end
    ctx.astrocyte_memory = state

    if new_body then
        ngx.req.set_body_data(new_body)
    end
    if state.retain then
        -- A compressed reply could not be read for retain.
        core.request.set_header(ctx, "Accept-Encoding", nil)
    end
end

function _M.header_filter(_, ctx)
    local state = state_of(ctx)
    if not state then
        return
    end
    memory.note_response(state, ngx.status, ngx.header["Content-Type"],
                         ngx.header["Content-Encoding"])
end

function _M.body_filter(conf, ctx)
    local state = state_of(ctx)
    if not state then
        return
    end
    -- Copies the chunk and leaves it to flow on, so streamed replies still stream;
    -- unlike core.response.hold_body_chunk the copy stops at max_reply_bytes.
    memory.collect(conf, state, ngx.arg[1])
end

function _M.log(conf, ctx)
    local state = state_of(ctx)
    if not state then
        return
    end
    local payload, why = memory.after_upstream(conf, state)
    if not payload then
        core.log.info("[astrocyte-memory] nothing retained: ", why)
        return
    end
    -- Cosockets are off in the log phase; the timer also keeps retain off the
    -- request path.
    local ok, err = memory.retain_async(conf, payload, state.auth)
    if not ok then
        core.log.warn("[astrocyte-memory] cannot schedule retain: ", err)
    end
end

return _M
