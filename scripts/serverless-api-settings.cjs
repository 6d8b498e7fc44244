// A local osls plugin for what serverless.yml cannot say by itself about the HTTP API:
// 1. a bad `authorizer` setup fails at once, in one line that says what to set (osls would
//    otherwise report a variable it cannot resolve, or a schema error, when packaging);
// 2. the stage's default route throttling (`httpApiThrottleBurst`, `httpApiThrottleRate`), which
//    osls's `provider.httpApi` has no setting for;
// 3. the access log group under its own logical id (see the hooks).
// It checks in its constructor because osls resolves variables and validates the configuration
// before any lifecycle hook runs.
"use strict";

/** The params as osls resolves them: `--param` first, then the stage's, then `default`. */
function readParams(serverless, options) {
  const config = serverless.configurationInput ?? {};
  const stage = options.stage ?? config.provider?.stage ?? "dev";
  const fromCli = Object.fromEntries(
    (serverless.processedInput?.options?.param ?? []).map((item) => {
      const [key, ...value] = String(item).split("=");
      return [key, value.join("=")];
    }),
  );
  return { ...config.params?.default, ...config.params?.[stage], ...fromCli };
}

function problemWith(params) {
  const authorizer = String(params.authorizer ?? "");
  if (authorizer !== "iam" && authorizer !== "jwt") {
    return `Unknown authorizer "${authorizer}": set --param=authorizer=iam (SigV4, the default) or --param=authorizer=jwt with --param=jwtIssuerUrl=https://… and --param=jwtAudience=….`;
  }
  if (authorizer === "jwt" && !(params.jwtIssuerUrl && params.jwtAudience)) {
    return "authorizer=jwt needs --param=jwtIssuerUrl=https://… (your OIDC issuer) and --param=jwtAudience=… (the audience its tokens carry).";
  }
  for (const name of ["httpApiThrottleBurst", "httpApiThrottleRate"]) {
    if (!(Number(params[name]) > 0)) return `${name} must be a number above 0.`;
  }
  return undefined;
}

class ApiSettings {
  constructor(serverless, options) {
    const params = readParams(serverless, options);
    const problem = problemWith(params);
    if (problem) throw new serverless.classes.Error(problem, "HTTP_API_SETTINGS");
    const template = () => serverless.service.provider.compiledCloudFormationTemplate;
    let functionLogGroup;
    this.hooks = {
      // osls names both the `httpApi` function's log group and the API's access log group
      // `HttpApiLogGroup`: the second would replace the first, and the function could not log.
      "before:package:compileEvents": () => {
        functionLogGroup = template().Resources.HttpApiLogGroup;
      },
      "after:package:compileEvents": () => {
        const resources = template().Resources;
        const stage = resources.HttpApiStage;
        if (!stage) return;
        Object.assign(stage.Properties.DefaultRouteSettings, {
          ThrottlingBurstLimit: Number(params.httpApiThrottleBurst),
          ThrottlingRateLimit: Number(params.httpApiThrottleRate),
        });
        if (stage.Properties.AccessLogSettings && functionLogGroup) {
          resources.HttpApiAccessLogGroup = resources.HttpApiLogGroup;
          resources.HttpApiLogGroup = functionLogGroup;
          stage.Properties.AccessLogSettings.DestinationArn = {
            "Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"],
          };
          stage.DependsOn = "HttpApiAccessLogGroup";
        }
      },
    };
  }
}

module.exports = ApiSettings;
