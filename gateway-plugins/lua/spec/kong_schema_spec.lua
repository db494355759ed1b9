-- The Kong plugin's schema, checked by the test shim's validator of Kong's
-- schema DSL subset (tests/kong_shim/kong_schema.lua): defaults and rejections.
local schema = require("kong.plugins.astrocyte-memory.schema")
local check = require("kong_schema").check_plugin_config
local core = require("astrocyte_memory.core")

describe("kong schema", function()
  it("fills the same defaults as the core", function()
    local conf = assert(check(schema, { astrocyte_url = "http://mem:8080" }))
    for k, v in pairs(core.DEFAULTS) do
      assert.same(v, conf[k], k)
    end
  end)

  it("rejects invalid configs", function()
    local bad = {
      {},
      { astrocyte_url = "mem:8080" },
      { astrocyte_url = "http://m", position = "middle" },
      { astrocyte_url = "http://m", template = "none" },
      { astrocyte_url = "http://m", timeout_ms = 0 },
      { astrocyte_url = "http://m", max_results = 1.5 },
      { astrocyte_url = "http://m", retain = "no" },
      { astrocyte_url = "http://m", retain_tags = { 3 } },
      { astrocyte_url = "http://m", unknown = 1 },
    }
    for _, conf in ipairs(bad) do
      local ok, err = check(schema, conf)
      assert.is_nil(ok)
      assert.is_string(err)
    end
  end)
end)
