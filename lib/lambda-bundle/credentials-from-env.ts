/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles (serverless.yml,
 * `custom.esbuild.alias`). Lambda hands a function its role's credentials in environment
 * variables, the first place the SDK's default chain looks; the rest of that chain (profiles,
 * SSO, STS web identity, container and instance metadata) is never reached there, yet it was a
 * third of each bundle. Tests and scripts run unbundled and keep the full chain.
 */
export { fromEnv as defaultProvider } from "@aws-sdk/credential-provider-env";
