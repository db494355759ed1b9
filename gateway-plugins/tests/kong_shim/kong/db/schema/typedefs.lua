-- TEST SHIM of kong.db.schema.typedefs, NOT Kong: only the typedef the
-- astrocyte-memory schema uses.
return {
  protocols_http = {
    type = "set",
    required = true,
    default = { "grpc", "grpcs", "http", "https" },
    elements = { type = "string", one_of = { "grpc", "grpcs", "http", "https" } },
  },
}
