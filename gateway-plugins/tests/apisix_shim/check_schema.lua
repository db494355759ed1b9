-- Test helper (run by test_apisix_plugin.py under plain LuaJIT, no nginx):
-- reads a JSON array of plugin confs on stdin, runs the unchanged plugin's
-- check_schema on each and prints a JSON array of {ok, err, conf} (conf after
-- defaults were filled in).

-- The shim's core module binds ngx log levels when loaded; nothing logs here.
ngx = ngx or { WARN = 5, INFO = 7, log = function() end } -- luacheck: ignore

local cjson = require("cjson.safe")
local plugin = require("apisix.plugins.astrocyte-memory")

local confs = assert(cjson.decode(io.read("*a")), "stdin must be a JSON array")
local results = {}
for i, conf in ipairs(confs) do
    local ok, err = plugin.check_schema(conf)
    results[i] = { ok = ok == true, err = err or cjson.null, conf = conf }
end
io.write(assert(cjson.encode(results)))
