-- TEST SHIM of Kong's PDK (the global `kong`), NOT Kong: exactly the calls the
-- astrocyte-memory handler makes, implemented over plain ngx.* so the unchanged
-- handler runs in Debian's nginx + lua-nginx-module. Semantics follow Kong 3.x
-- docs, including get_raw_body refusing bodies spooled to a temp file.
local ngx = ngx

local PLUGIN_NAME = "astrocyte-memory"

local function first(v)
  if type(v) == "table" then
    return v[1]
  end
  return v
end

local request = {}

function request.get_method()
  return ngx.req.get_method()
end

function request.get_path()
  local uri = ngx.var.request_uri or "/"
  return (uri:gsub("%?.*$", ""))
end

function request.get_header(name)
  return first(ngx.req.get_headers()[name])
end

function request.get_raw_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  if ngx.req.get_body_file() then
    return nil, "request body did not fit into client body buffer, "
      .. "consider raising 'client_body_buffer_size'"
  end
  return ""
end

local service_request = {}

function service_request.set_raw_body(body)
  ngx.req.read_body()
  ngx.req.set_body_data(body)
  ngx.req.set_header("Content-Length", tostring(#body))
end

function service_request.clear_header(name)
  ngx.req.clear_header(name)
end

local response = {}

function response.get_status()
  return ngx.status
end

function response.get_header(name)
  return first(ngx.header[name])
end

local function logger(level)
  return function(...)
    ngx.log(level, "[kong] [", PLUGIN_NAME, "] ", ...)
  end
end

local log = {
  debug = logger(ngx.DEBUG),
  info = logger(ngx.INFO),
  notice = logger(ngx.NOTICE),
  warn = logger(ngx.WARN),
  err = logger(ngx.ERR),
}

-- kong.ctx.plugin: a table private to the plugin, living for one request.
local ctx = setmetatable({}, {
  __index = function(_, key)
    if key ~= "plugin" then
      return nil
    end
    local t = ngx.ctx.kong_shim_plugin_ctx
    if not t then
      t = {}
      ngx.ctx.kong_shim_plugin_ctx = t
    end
    return t
  end,
})

return {
  request = request,
  service = { request = service_request },
  response = response,
  log = log,
  ctx = ctx,
}
