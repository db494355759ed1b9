output "api_id" {
  description = "Resource id of the chat API."
  value       = azurerm_api_management_api.chat.id
}

output "chat_completions_url" {
  description = "Where clients send chat completions."
  value       = "${data.azurerm_api_management.this.gateway_url}/${var.api_path}/chat/completions"
}

output "policy_fragment_ids" {
  description = "Resource ids of the two policy fragments."
  value = [
    azurerm_api_management_policy_fragment.astrocyte_recall.id,
    azurerm_api_management_policy_fragment.astrocyte_retain.id,
  ]
}
