-- TEST SHIM, not APISIX: a small JSON-schema validator standing in for
-- apisix.core.schema (which APISIX builds on lua-resty-jsonschema). It covers
-- the subset the astrocyte-memory schema uses: type (object, array, string,
-- integer, number, boolean), properties, required, enum, minimum, maximum,
-- minLength, maxLength, minItems, maxItems, items, additionalProperties = false,
-- and default. Like APISIX's validator it fills in defaults, so plugins can rely
-- on them after check(). Pure Lua: runs under plain LuaJIT for its unit tests.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local floor = math.floor
local concat = table.concat
local sort = table.sort

local _M = {}

-- cjson decodes JSON null to a lightuserdata sentinel.
local function is_null(v)
    return type(v) == "userdata"
end

local function is_array(v)
    if type(v) ~= "table" then
        return false
    end
    local n = 0
    for k in pairs(v) do
        if type(k) ~= "number" or k < 1 or floor(k) ~= k then
            return false
        end
        n = n + 1
    end
    -- An empty table decodes from both {} and []; accept it as either.
    return n == #v
end

local function is_object(v)
    if type(v) ~= "table" then
        return false
    end
    local next_key = next(v)
    if next_key == nil then
        return true
    end
    return not is_array(v)
end

local checks = {
    object = is_object,
    array = is_array,
    string = function(v) return type(v) == "string" end,
    boolean = function(v) return type(v) == "boolean" end,
    number = function(v) return type(v) == "number" and v == v end,
    integer = function(v)
        return type(v) == "number" and v == v and floor(v) == v
            and v ~= math.huge and v ~= -math.huge
    end,
    null = is_null,
}

local function describe(v)
    if type(v) == "string" then
        return '"' .. v .. '"'
    end
    return tostring(v)
end

local function copy_default(v)
    if type(v) ~= "table" then
        return v
    end
    local out = {}
    for k, x in pairs(v) do
        out[k] = copy_default(x)
    end
    return out
end

local validate

local function check_type(schema, value, where)
    local t = schema.type
    if t == nil then
        return true
    end
    local types = type(t) == "table" and t or { t }
    for _, name in ipairs(types) do
        local check = checks[name]
        if not check then
            return nil, "schema error: unsupported type " .. tostring(name)
        end
        if check(value) then
            return true
        end
    end
    return nil, where .. ": wrong type: expected " .. concat(types, " or ")
        .. ", got " .. (is_null(value) and "null" or type(value))
end

local function check_object(schema, value, where)
    local props = schema.properties or {}
    -- Defaults first, as APISIX does, so required fields with defaults pass.
    for name, sub in pairs(props) do
        if value[name] == nil and sub.default ~= nil then
            value[name] = copy_default(sub.default)
        end
    end
    for _, name in ipairs(schema.required or {}) do
        if value[name] == nil then
            return nil, where .. ": property " .. describe(name) .. " is required"
        end
    end
    if schema.additionalProperties == false then
        local names = {}
        for name in pairs(value) do
            names[#names + 1] = tostring(name)
        end
        sort(names)
        for _, name in ipairs(names) do
            if props[name] == nil then
                return nil, where .. ": additional property " .. describe(name)
                    .. " is not allowed"
            end
        end
    end
    -- Sorted, so the first error reported does not depend on hash order.
    local names = {}
    for name in pairs(props) do
        names[#names + 1] = name
    end
    sort(names)
    for _, name in ipairs(names) do
        if value[name] ~= nil then
            local ok, err = validate(props[name], value[name],
                                     where .. "." .. name)
            if not ok then
                return nil, err
            end
        end
    end
    return true
end

local function check_array(schema, value, where)
    if schema.minItems and #value < schema.minItems then
        return nil, where .. ": expected at least " .. schema.minItems .. " items"
    end
    if schema.maxItems and #value > schema.maxItems then
        return nil, where .. ": expected at most " .. schema.maxItems .. " items"
    end
    if schema.items then
        for i, item in ipairs(value) do
            local ok, err = validate(schema.items, item, where .. "[" .. i .. "]")
            if not ok then
                return nil, err
            end
        end
    end
    return true
end

validate = function(schema, value, where)
    local ok, err = check_type(schema, value, where)
    if not ok then
        return nil, err
    end
    if schema.enum then
        local found = false
        for _, allowed in ipairs(schema.enum) do
            if allowed == value then
                found = true
                break
            end
        end
        if not found then
            local names = {}
            for i, allowed in ipairs(schema.enum) do
                names[i] = describe(allowed)
            end
            return nil, where .. ": " .. describe(value) .. " is not one of "
                .. concat(names, ", ")
        end
    end
    if type(value) == "number" then
        if schema.minimum and value < schema.minimum then
            return nil, where .. ": expected " .. describe(value)
                .. " to be at least " .. schema.minimum
        end
        if schema.maximum and value > schema.maximum then
            return nil, where .. ": expected " .. describe(value)
                .. " to be at most " .. schema.maximum
        end
    elseif type(value) == "string" then
        if schema.minLength and #value < schema.minLength then
            return nil, where .. ": string too short, expected at least "
                .. schema.minLength
        end
        if schema.maxLength and #value > schema.maxLength then
            return nil, where .. ": string too long, expected at most "
                .. schema.maxLength
        end
    end
    if type(value) == "table" then
        if is_array(value) and next(value) ~= nil then
            return check_array(schema, value, where)
        end
        if schema.type == "array" then
            return check_array(schema, value, where)
        end
        return check_object(schema, value, where)
    end
    return true
end

--- Validate `value` against `schema`, filling in defaults in place.
-- @return true | false, err (the same contract as apisix.core.schema.check)
function _M.check(schema, value)
    local ok, err = validate(schema, value, "conf")
    if not ok then
        return false, err
    end
    return true
end

return _M
