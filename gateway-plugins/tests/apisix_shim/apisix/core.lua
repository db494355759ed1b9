-- TEST SHIM, not APISIX: exactly the `apisix.core` calls the astrocyte-memory
-- plugin makes, implemented over plain ngx.* so the unchanged plugin file runs
-- inside Debian's nginx + lua-nginx-module. Semantics follow APISIX's
-- documented behaviour for these calls (e.g. get_body reads a body that nginx
-- spooled to a temp file; header() returns the first value of a repeated header).

local ngx = ngx
local type = type
local select = select
local tostring = tostring
local concat = table.concat

local _M = {
    schema = require("apisix.core.schema"),
}

-- core.log.*: variadic, concatenated like ngx.log.
local function logger(level)
    return function(...)
        local parts = {}
        for i = 1, select("#", ...) do
            parts[i] = tostring((select(i, ...)))
        end
        ngx.log(level, concat(parts))
    end
end

_M.log = {
    warn = logger(ngx.WARN),
    info = logger(ngx.INFO),
}

local request = {}
_M.request = request

function request.get_method()
    return ngx.req.get_method()
end

function request.header(_, name)
    local value = ngx.req.get_headers()[name]
    if type(value) == "table" then
        return value[1]
    end
    return value
end

function request.set_header(_, name, value)
    ngx.req.set_header(name, value)
end

function request.get_body(max_size)
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    if not data then
        local path = ngx.req.get_body_file()
        if not path then
            return nil
        end
        local f, err = io.open(path, "rb")
        if not f then
            return nil, err
        end
        data = f:read("*a")
        f:close()
    end
    if max_size and #data > max_size then
        return nil, "request size " .. #data .. " is greater than the maximum size "
            .. max_size .. " allowed"
    end
    return data
end

return _M
