-- TEST SHIM, not APISIX: the part of APISIX's plugin runtime one plugin on one
-- route needs, in the runner interface of ../nginx_harness.py. init() does what
-- the Admin API does when a route is saved (check_schema, which also fills in
-- defaults); the phase functions are called from nginx's *_by_lua blocks and
-- pass the plugin its conf and a per-request `ctx` kept in ngx.ctx.api_ctx, as
-- APISIX does.

local cjson = require("cjson.safe")

local ngx = ngx
local type = type
local error = error
local tostring = tostring

local PLUGIN_MODULE = "apisix.plugins.astrocyte-memory"

local _M = {}

local plugin, conf

--- Check `conf_json` (a JSON object) against the plugin's schema, once.
function _M.init(conf_json)
    plugin = require(PLUGIN_MODULE)
    local decoded, err = cjson.decode(conf_json)
    if type(decoded) ~= "table" then
        error("plugin conf is not a JSON object: " .. tostring(err))
    end
    local ok, serr = plugin.check_schema(decoded)
    if not ok then
        error("invalid " .. plugin.name .. " conf: " .. tostring(serr))
    end
    conf = decoded
end

local function api_ctx()
    local ctx = ngx.ctx.api_ctx
    if not ctx then
        -- APISIX's ctx.var is a caching view of ngx.var; the plain one reads the same.
        ctx = { var = ngx.var, _plugin_name = plugin.name }
        ngx.ctx.api_ctx = ctx
    end
    return ctx
end

local function phase(name)
    return function()
        local fn = plugin[name]
        if fn then
            fn(conf, api_ctx())
        end
    end
end

_M.rewrite = phase("rewrite")
_M.access = phase("access")
_M.header_filter = phase("header_filter")
_M.body_filter = phase("body_filter")
_M.log = phase("log")

return _M
