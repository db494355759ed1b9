-- Unit tests of the JSON-schema subset in the apisix.core shim
-- (tests/apisix_shim/apisix/core/schema.lua). Run: busted tests/apisix_shim/spec

package.path = "tests/apisix_shim/?.lua;" .. package.path

local schema = require("apisix.core.schema")

describe("apisix.core.schema shim", function()
  local s = {
    type = "object",
    properties = {
      name = { type = "string", minLength = 2, maxLength = 5 },
      count = { type = "integer", minimum = 1, maximum = 10, default = 3 },
      ratio = { type = "number", minimum = 0, maximum = 1 },
      mode = { type = "string", enum = { "a", "b" }, default = "a" },
      flag = { type = "boolean", default = false },
      tags = { type = "array", minItems = 1, maxItems = 2, items = { type = "string" } },
      nested = {
        type = "object",
        properties = { x = { type = "integer", default = 7 } },
        required = { "x" },
      },
    },
    required = { "name" },
  }

  it("accepts a valid value and fills in defaults", function()
    local conf = { name = "abc", nested = {} }
    local ok, err = schema.check(s, conf)
    assert.is_true(ok, err)
    assert.equal(3, conf.count)
    assert.equal("a", conf.mode)
    assert.is_false(conf.flag)
    assert.equal(7, conf.nested.x)
    assert.is_nil(conf.ratio)
  end)

  it("does not override values that are set", function()
    local conf = { name = "abc", count = 9, flag = true }
    assert.is_true(schema.check(s, conf))
    assert.equal(9, conf.count)
    assert.is_true(conf.flag)
  end)

  it("rejects a missing required property", function()
    local ok, err = schema.check(s, { count = 2 })
    assert.is_false(ok)
    assert.matches('"name" is required', err, 1, true)
  end)

  local bad = {
    { "wrong type string", { name = 5 }, "expected string" },
    { "float for integer", { name = "abc", count = 1.5 }, "expected integer" },
    { "below minimum", { name = "abc", count = 0 }, "at least 1" },
    { "above maximum", { name = "abc", count = 11 }, "at most 10" },
    { "number above maximum", { name = "abc", ratio = 1.5 }, "at most 1" },
    { "too short", { name = "a" }, "too short" },
    { "too long", { name = "abcdef" }, "too long" },
    { "not in enum", { name = "abc", mode = "c" }, 'is not one of "a", "b"' },
    { "string for boolean", { name = "abc", flag = "yes" }, "expected boolean" },
    { "object for array", { name = "abc", tags = { x = 1 } }, "expected array" },
    { "wrong item type", { name = "abc", tags = { 1 } }, "conf.tags[1]" },
    { "too many items", { name = "abc", tags = { "a", "b", "c" } }, "at most 2 items" },
    { "array for object", { name = "abc", nested = { 1, 2 } }, "expected object" },
  }
  for _, case in ipairs(bad) do
    it("rejects: " .. case[1], function()
      local ok, err = schema.check(s, case[2])
      assert.is_false(ok)
      assert.matches(case[3], err, 1, true)
    end)
  end

  it("rejects a non-object value", function()
    local ok, err = schema.check(s, "conf")
    assert.is_false(ok)
    assert.matches("expected object", err, 1, true)
  end)

  it("rejects unknown properties only with additionalProperties = false", function()
    local open = { type = "object", properties = { a = { type = "string" } } }
    assert.is_true(schema.check(open, { a = "x", b = 1 }))
    local closed = { type = "object", properties = { a = { type = "string" } },
                     additionalProperties = false }
    local ok, err = schema.check(closed, { a = "x", b = 1 })
    assert.is_false(ok)
    assert.matches('additional property "b"', err, 1, true)
  end)

  it("treats an empty table as an empty array or an empty object", function()
    assert.is_true(schema.check({ type = "array" }, {}))
    assert.is_true(schema.check({ type = "object" }, {}))
  end)

  it("accepts a list of types", function()
    local either = { type = { "string", "integer" } }
    assert.is_true(schema.check(either, "x"))
    assert.is_true(schema.check(either, 3))
    assert.is_false(schema.check(either, true))
  end)
end)
