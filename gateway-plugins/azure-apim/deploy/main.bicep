// Astrocyte memory for an OpenAI-compatible chat API behind an EXISTING API Management
// instance: the three named values, the two policy fragments, an API with its operations and
// the API-scope policy that includes the fragments. Deploy into the instance's resource group:
//   az deployment group create -g <rg> -f main.bicep \
//     -p apimName=<apim> astrocyteUrl=https://astrocyte.example.com astrocyteApiKey=<key> \
//        upstreamUrl=https://my-llm.example.com/v1

@description('Name of the existing API Management instance.')
param apimName string

@description('Base URL of the Astrocyte gateway, without a trailing slash.')
param astrocyteUrl string

@secure()
@description('API key the fragments send to the Astrocyte gateway as X-Api-Key.')
param astrocyteApiKey string

@description('Bank used when the request names none (header X-Astrocyte-Bank, JWT claim).')
param astrocyteBank string = 'chat'

@description('Base URL of the OpenAI-compatible LLM, e.g. https://api.openai.com/v1.')
param upstreamUrl string

@description('Id of the API created in API Management.')
param apiName string = 'astrocyte-chat'

@description('URL suffix of the API on the gateway: https://<gateway>/<apiPath>/chat/completions.')
param apiPath string = 'llm'

@description('Require an APIM subscription key on calls.')
param subscriptionRequired bool = true

resource apim 'Microsoft.ApiManagement/service@2022-08-01' existing = {
  name: apimName
}

resource namedUrl 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'astrocyte-url'
  properties: {
    displayName: 'astrocyte-url'
    value: astrocyteUrl
    secret: false
  }
}

resource namedApiKey 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'astrocyte-api-key'
  properties: {
    displayName: 'astrocyte-api-key'
    value: astrocyteApiKey
    secret: true
  }
}

resource namedBank 'Microsoft.ApiManagement/service/namedValues@2022-08-01' = {
  parent: apim
  name: 'astrocyte-bank'
  properties: {
    displayName: 'astrocyte-bank'
    value: astrocyteBank
    secret: false
  }
}

// rawxml: the fragments carry C# expressions unescaped, as written.
resource recallFragment 'Microsoft.ApiManagement/service/policyFragments@2022-08-01' = {
  parent: apim
  name: 'astrocyte-recall'
  properties: {
    description: 'Astrocyte memory: recall and inject memories before the LLM call (inbound).'
    format: 'rawxml'
    value: loadTextContent('../fragments/astrocyte-recall.xml')
  }
  // A policy that names an undefined named value is rejected.
  dependsOn: [
    namedUrl
    namedApiKey
    namedBank
  ]
}

resource retainFragment 'Microsoft.ApiManagement/service/policyFragments@2022-08-01' = {
  parent: apim
  name: 'astrocyte-retain'
  properties: {
    description: 'Astrocyte memory: retain the exchange after the LLM call (outbound).'
    format: 'rawxml'
    value: loadTextContent('../fragments/astrocyte-retain.xml')
  }
  dependsOn: [
    namedUrl
    namedApiKey
  ]
}

resource api 'Microsoft.ApiManagement/service/apis@2022-08-01' = {
  parent: apim
  name: apiName
  properties: {
    displayName: 'Chat with Astrocyte memory'
    path: apiPath
    protocols: [
      'https'
    ]
    serviceUrl: upstreamUrl
    subscriptionRequired: subscriptionRequired
  }
}

resource chatOperation 'Microsoft.ApiManagement/service/apis/operations@2022-08-01' = {
  parent: api
  name: 'chat-completions'
  properties: {
    displayName: 'Create chat completion'
    method: 'POST'
    urlTemplate: '/chat/completions'
  }
}

resource modelsOperation 'Microsoft.ApiManagement/service/apis/operations@2022-08-01' = {
  parent: api
  name: 'list-models'
  properties: {
    displayName: 'List models'
    method: 'GET'
    urlTemplate: '/models'
  }
}

resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2022-08-01' = {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: loadTextContent('../policies/chat-api-policy.xml')
  }
  dependsOn: [
    recallFragment
    retainFragment
  ]
}

output apiId string = api.id
output chatCompletionsUrl string = '${apim.properties.gatewayUrl}/${apiPath}/chat/completions'
output fragmentIds array = [
  recallFragment.name
  retainFragment.name
]
