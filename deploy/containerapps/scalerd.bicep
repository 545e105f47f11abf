// scalerd's own Container App, its user-assigned identity and its role.
//
//   az deployment group create -g ops -f deploy/containerapps/scalerd.bicep \
//     -p environmentId=<managed environment id> image=<registry>.azurecr.io/scalerd:0.1.0 \
//        configToml="$(cat config.toml)" redisUrl=rediss://<cache>.redis.cache.windows.net:6380/0 \
//        redisPassword=<…> controlToken=<32 random characters>
//
// The role is ../azure-role.json, created in this subscription and assigned to the identity
// on this resource group; assign it on other scopes as deploy/README.md says.

@description('Region of the app; the managed environment must be in it.')
param location string = resourceGroup().location

@description('Resource id of the Container Apps managed environment.')
param environmentId string

@description('The image built from the repository\'s Dockerfile.')
param image string

@description('The whole config.toml, mounted at /etc/scalerd/config.toml from a secret.')
@secure()
param configToml string

@description('The Redis URL, without a password (rediss://host:6380/0).')
@secure()
param redisUrl string

@secure()
param redisPassword string

@description('Bearer token of the control endpoints (pause, override, evaluate).')
@secure()
param controlToken string

@description('Replicas of scalerd itself.')
param replicas int = 2

var role = loadJsonContent('../azure-role.json')

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'scalerd'
  location: location
}

resource roleDefinition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, role.Name)
  properties: {
    roleName: role.Name
    description: role.Description
    type: 'CustomRole'
    permissions: [
      {
        actions: role.Actions
        notActions: role.NotActions
        dataActions: role.DataActions
        notDataActions: role.NotDataActions
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource roleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, identity.id, roleDefinition.id)
  properties: {
    roleDefinitionId: roleDefinition.id
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: 'scalerd'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    managedEnvironmentId: environmentId
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: false
        targetPort: 8080
        transport: 'http'
      }
      secrets: [
        { name: 'config-toml', value: configToml }
        { name: 'redis-url', value: redisUrl }
        { name: 'redis-password', value: redisPassword }
        { name: 'control-token', value: controlToken }
      ]
    }
    template: {
      containers: [
        {
          name: 'scalerd'
          image: image
          args: [ 'run', '--config', '/etc/scalerd/config.toml' ]
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
            { name: 'SCALERD_REDIS_URL', secretRef: 'redis-url' }
            { name: 'SCALERD_REDIS_PASSWORD', secretRef: 'redis-password' }
            { name: 'SCALERD_CONTROL_TOKEN', secretRef: 'control-token' }
          ]
          probes: [
            { type: 'Startup', httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 2, failureThreshold: 30 }
            { type: 'Liveness', httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10, failureThreshold: 3 }
            { type: 'Readiness', httpGet: { path: '/readyz', port: 8080 }, periodSeconds: 10, failureThreshold: 3 }
          ]
          volumeMounts: [
            { volumeName: 'config', mountPath: '/etc/scalerd' }
            { volumeName: 'data', mountPath: '/var/lib/scalerd' }
          ]
        }
      ]
      scale: {
        minReplicas: replicas
        maxReplicas: replicas
      }
      volumes: [
        {
          name: 'config'
          storageType: 'Secret'
          secrets: [ { secretRef: 'config-toml', path: 'config.toml' } ]
        }
        { name: 'data', storageType: 'EmptyDir' }
      ]
    }
  }
  dependsOn: [ roleAssignment ]
}

output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
