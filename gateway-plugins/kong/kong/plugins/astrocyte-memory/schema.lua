-- Configuration schema of the astrocyte-memory Kong plugin (Kong 3.x schema DSL).
-- Field names and defaults match the shared core (astrocyte_memory.core.DEFAULTS),
-- so the APISIX plugin and this one are configured the same way.
local typedefs = require("kong.db.schema.typedefs")

local PLACEHOLDER = "{memories}"

local function has_placeholder(template)
  if not template:find(PLACEHOLDER, 1, true) then
    return nil, "template must contain " .. PLACEHOLDER
  end
  return true
end

return {
  name = "astrocyte-memory",
  fields = {
    { protocols = typedefs.protocols_http },
    {
      config = {
        type = "record",
        fields = {
          { astrocyte_url = { type = "string", required = true, match = "^https?://[^/]" } },
          -- Secret: encrypted at rest and resolvable from a Kong vault reference.
          { api_key = { type = "string", encrypted = true, referenceable = true } },
          { forward_bearer = { type = "boolean", required = true, default = false } },
          { bank = { type = "string", len_min = 1 } },
          { bank_header = { type = "string", len_min = 1 } },
          { bank_claim = { type = "string", len_min = 1 } },
          { timeout_ms = { type = "integer", required = true, default = 300,
                           between = { 1, 60000 } } },
          { retain_timeout_ms = { type = "integer", required = true, default = 3000,
                                  between = { 1, 600000 } } },
          { position = { type = "string", required = true, default = "first",
                         one_of = { "first", "before_last_user" } } },
          { template = { type = "string", required = true,
                         default = "Relevant memories from earlier conversations:\n{memories}",
                         custom_validator = has_placeholder } },
          { max_chars = { type = "integer", required = true, default = 2000, gt = 0 } },
          { max_tokens = { type = "integer", gt = 0 } },
          { max_results = { type = "integer", required = true, default = 5,
                            between = { 1, 100 } } },
          { max_query_chars = { type = "integer", required = true, default = 2000, gt = 0 } },
          { retain = { type = "boolean", required = true, default = true } },
          { retain_tags = { type = "array", elements = { type = "string" } } },
          { max_reply_bytes = { type = "integer", required = true, default = 1048576,
                                gt = 0 } },
        },
      },
    },
  },
}
