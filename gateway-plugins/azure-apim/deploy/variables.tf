variable "apim_name" {
  description = "Name of the existing API Management instance."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the API Management instance."
  type        = string
}

variable "astrocyte_url" {
  description = "Base URL of the Astrocyte gateway, without a trailing slash."
  type        = string

  validation {
    condition     = can(regex("^https?://[^ ]+[^/]$", var.astrocyte_url))
    error_message = "astrocyte_url must be an http(s) URL without a trailing slash."
  }
}

variable "astrocyte_api_key" {
  description = "API key the fragments send to the Astrocyte gateway as X-Api-Key."
  type        = string
  sensitive   = true
}

variable "astrocyte_bank" {
  description = "Bank used when the request names none (header X-Astrocyte-Bank, JWT claim)."
  type        = string
  default     = "chat"
}

variable "upstream_url" {
  description = "Base URL of the OpenAI-compatible LLM, e.g. https://api.openai.com/v1."
  type        = string
}

variable "api_name" {
  description = "Id of the API created in API Management."
  type        = string
  default     = "astrocyte-chat"
}

variable "api_path" {
  description = "URL suffix of the API on the gateway."
  type        = string
  default     = "llm"
}

variable "subscription_required" {
  description = "Require an APIM subscription key on calls."
  type        = bool
  default     = true
}
