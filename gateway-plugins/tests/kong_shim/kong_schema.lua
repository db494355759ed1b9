-- TEST SHIM, NOT Kong: a validator for the subset of Kong's schema DSL that the
-- astrocyte-memory schema uses (types, required, default, between, gt, one_of,
-- match, len_min, custom_validator, array elements), applied the way Kong
-- applies a plugin config: defaults filled in, unknown fields rejected.
-- Pure Lua, so busted can test schema rejections without nginx.
local _M = {}

local function is_null(v)
  return v == nil or (ngx and v == ngx.null)
end

local function check_value(field, v, name)
  local t = field.type
  if t == "string" then
    if type(v) ~= "string" then
      return nil, name .. ": expected a string"
    end
    if field.len_min and #v < field.len_min then
      return nil, name .. ": length must be at least " .. field.len_min
    end
    if field.match and not v:match(field.match) then
      return nil, name .. ": invalid value: " .. v
    end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then
      return nil, name .. ": expected a boolean"
    end
  elseif t == "integer" or t == "number" then
    if type(v) ~= "number" or (t == "integer" and v % 1 ~= 0) then
      return nil, name .. ": expected an " .. t
    end
    if field.between and (v < field.between[1] or v > field.between[2]) then
      return nil, ("%s: value should be between %d and %d"):format(
        name, field.between[1], field.between[2])
    end
    if field.gt and v <= field.gt then
      return nil, name .. ": value must be greater than " .. field.gt
    end
  elseif t == "array" or t == "set" then
    if type(v) ~= "table" then
      return nil, name .. ": expected an array"
    end
    for i, e in ipairs(v) do
      local ok, err = check_value(field.elements, e, name .. "[" .. i .. "]")
      if not ok then
        return nil, err
      end
    end
  elseif t == "record" then
    return _M.check_record(field, v, name)
  else
    return nil, name .. ": unsupported type in shim: " .. tostring(t)
  end
  if field.one_of then
    local found = false
    for _, allowed in ipairs(field.one_of) do
      if v == allowed then
        found = true
      end
    end
    if not found then
      return nil, name .. ": expected one of: " .. table.concat(field.one_of, ", ")
    end
  end
  if field.custom_validator then
    local ok, err = field.custom_validator(v)
    if not ok then
      return nil, name .. ": " .. tostring(err)
    end
  end
  return v
end

--- Validate `value` against a record definition; returns the value with defaults.
function _M.check_record(record, value, name)
  if type(value) ~= "table" then
    return nil, (name or "config") .. ": expected a record"
  end
  local out, known = {}, {}
  for _, entry in ipairs(record.fields) do
    local fname, field = next(entry)
    known[fname] = true
    local path = name and (name .. "." .. fname) or fname
    local v = value[fname]
    if is_null(v) then
      v = field.default
    end
    if v == nil then
      if field.required then
        return nil, path .. ": required field missing"
      end
    else
      local checked, err = check_value(field, v, path)
      if checked == nil then
        return nil, err
      end
      out[fname] = checked
    end
  end
  for k in pairs(value) do
    if not known[k] then
      return nil, (name and (name .. "." .. k) or k) .. ": unknown field"
    end
  end
  return out
end

--- The `config` record of a plugin schema, applied to `conf`.
function _M.check_plugin_config(schema, conf)
  for _, entry in ipairs(schema.fields) do
    local fname, field = next(entry)
    if fname == "config" then
      return _M.check_record(field, conf, "config")
    end
  end
  return nil, "schema has no config record"
end

return _M
