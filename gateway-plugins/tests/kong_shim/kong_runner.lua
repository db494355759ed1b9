-- TEST SHIM, NOT Kong: drives the unchanged astrocyte-memory Kong plugin from
-- nginx's phase blocks (see tests/nginx_harness.py) the way Kong would: the
-- config is validated against the plugin's schema with defaults filled in, and
-- each phase calls the handler method with that config.
local _M = {}

local handler, conf

function _M.init(conf_json)
  _G.kong = require("kong")
  local schema = require("kong.plugins.astrocyte-memory.schema")
  handler = require("kong.plugins.astrocyte-memory.handler")
  local decoded = require("cjson.safe").decode(conf_json)
  local checked, err = require("kong_schema").check_plugin_config(schema, decoded or {})
  if not checked then
    error("invalid astrocyte-memory config: " .. tostring(err))
  end
  conf = checked
end

function _M.access()
  handler:access(conf)
end

function _M.header_filter()
  handler:header_filter(conf)
end

function _M.body_filter()
  handler:body_filter(conf)
end

function _M.log()
  handler:log(conf)
end

return _M
