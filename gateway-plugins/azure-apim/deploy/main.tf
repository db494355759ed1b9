# Astrocyte memory for an OpenAI-compatible chat API behind an EXISTING API Management
# instance (azurerm provider): named values, the two policy fragments, an API with its
# operations and the API-scope policy that includes the fragments.
#   terraform init && terraform apply -var-file=prod.tfvars

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # azurerm_api_management_policy_fragment exists since 3.111.
      version = ">= 3.111, < 5.0"
    }
  }
}

provider "azurerm" {
  features {}
}

data "azurerm_api_management" "this" {
  name                = var.apim_name
  resource_group_name = var.resource_group_name
}

resource "azurerm_api_management_named_value" "astrocyte_url" {
  name                = "astrocyte-url"
  display_name        = "astrocyte-url"
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  value               = var.astrocyte_url
  secret              = false
}

resource "azurerm_api_management_named_value" "astrocyte_api_key" {
  name                = "astrocyte-api-key"
  display_name        = "astrocyte-api-key"
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  value               = var.astrocyte_api_key
  secret              = true
}

resource "azurerm_api_management_named_value" "astrocyte_bank" {
  name                = "astrocyte-bank"
  display_name        = "astrocyte-bank"
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  value               = var.astrocyte_bank
  secret              = false
}

# rawxml: the fragments carry C# expressions unescaped, as written.
resource "azurerm_api_management_policy_fragment" "astrocyte_recall" {
  api_management_id = data.azurerm_api_management.this.id
  name              = "astrocyte-recall"
  description       = "Astrocyte memory: recall and inject memories before the LLM call (inbound)."
  format            = "rawxml"
  value             = file("${path.module}/../fragments/astrocyte-recall.xml")

  # A policy that names an undefined named value is rejected.
  depends_on = [
    azurerm_api_management_named_value.astrocyte_url,
    azurerm_api_management_named_value.astrocyte_api_key,
    azurerm_api_management_named_value.astrocyte_bank,
  ]
}

resource "azurerm_api_management_policy_fragment" "astrocyte_retain" {
  api_management_id = data.azurerm_api_management.this.id
  name              = "astrocyte-retain"
  description       = "Astrocyte memory: retain the exchange after the LLM call (outbound)."
  format            = "rawxml"
  value             = file("${path.module}/../fragments/astrocyte-retain.xml")

  depends_on = [
    azurerm_api_management_named_value.astrocyte_url,
    azurerm_api_management_named_value.astrocyte_api_key,
  ]
}

resource "azurerm_api_management_api" "chat" {
  name                  = var.api_name
  api_management_name   = data.azurerm_api_management.this.name
  resource_group_name   = data.azurerm_api_management.this.resource_group_name
  revision              = "1"
  display_name          = "Chat with Astrocyte memory"
  path                  = var.api_path
  protocols             = ["https"]
  service_url           = var.upstream_url
  subscription_required = var.subscription_required
}

resource "azurerm_api_management_api_operation" "chat_completions" {
  operation_id        = "chat-completions"
  api_name            = azurerm_api_management_api.chat.name
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  display_name        = "Create chat completion"
  method              = "POST"
  url_template        = "/chat/completions"
}

resource "azurerm_api_management_api_operation" "list_models" {
  operation_id        = "list-models"
  api_name            = azurerm_api_management_api.chat.name
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  display_name        = "List models"
  method              = "GET"
  url_template        = "/models"
}

# xml_content is sent as rawxml by the provider.
resource "azurerm_api_management_api_policy" "chat" {
  api_name            = azurerm_api_management_api.chat.name
  api_management_name = data.azurerm_api_management.this.name
  resource_group_name = data.azurerm_api_management.this.resource_group_name
  xml_content         = file("${path.module}/../policies/chat-api-policy.xml")

  depends_on = [
    azurerm_api_management_policy_fragment.astrocyte_recall,
    azurerm_api_management_policy_fragment.astrocyte_retain,
  ]
}
