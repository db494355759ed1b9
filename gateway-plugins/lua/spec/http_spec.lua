-- Unit tests of the pure helpers of astrocyte_memory.http (requests are tested
-- for real through nginx in tests/test_kong_plugin.py).
local http = require("astrocyte_memory.http")

describe("parse_url", function()
  it("splits scheme, host, port and path", function()
    assert.same({ "http", "127.0.0.1", 8080, "/v1/recall" },
      { http.parse_url("http://127.0.0.1:8080/v1/recall") })
    assert.same({ "https", "mem.example", 443, "/" }, { http.parse_url("https://mem.example") })
    assert.same({ "http", "::1", 80, "/a?b=1" }, { http.parse_url("http://[::1]/a?b=1") })
  end)

  it("rejects what it cannot speak", function()
    assert.is_nil(http.parse_url("ftp://x"))
    assert.is_nil(http.parse_url("127.0.0.1:80"))
    assert.is_nil(http.parse_url(nil))
  end)
end)

describe("join", function()
  it("joins with exactly one slash", function()
    assert.equal("http://a/v1/recall", http.join("http://a/", "/v1/recall"))
    assert.equal("http://a/base/v1/recall", http.join("http://a/base", "v1/recall"))
  end)
end)
