-- luacheck config for the gateway plugins (run: cd gateway-plugins && luacheck .)
std = "ngx_lua"
max_line_length = 100
self = false -- Kong calls handler methods with the handler table as self
globals = { "kong" } -- the Kong runner (test shim) installs the PDK global
files["lua/spec"] = { std = "+busted" }
files["tests/apisix_shim/spec"] = { std = "+busted" }
files["tests/kong_shim/kong_schema.lua"] = { read_globals = { "ngx" } }
