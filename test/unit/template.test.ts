import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

// CloudFormation is untyped JSON; the assertions below say what each part must be.
// biome-ignore lint/suspicious/noExplicitAny: template properties are arbitrary JSON
type Json = any;
type Resource = { Type: string; Properties: Record<string, Json>; Condition?: string };
type Template = {
  Resources: Record<string, Resource>;
  Outputs: Record<string, Json>;
  Conditions?: Record<string, Json>;
};

const ROOT = resolve(import.meta.dirname, "../..");

/** `osls package` into a fresh directory, as CI and a deploy run it; returns the template. */
function packageTemplate(params: string[] = []): Template {
  const dir = mkdtempSync(join(tmpdir(), "sls-package-"));
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules/osls/bin/serverless.js"),
      "package",
      "--stage",
      "ci",
      "--package",
      dir,
      ...params,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: "1",
        SLS_NOTIFICATIONS_MODE: "off",
        AWS_ACCESS_KEY_ID: "packaging-only",
        AWS_SECRET_ACCESS_KEY: "packaging-only",
      },
      stdio: "pipe",
    },
  );
  return JSON.parse(readFileSync(join(dir, "cloudformation-template-update-stack.json"), "utf8"));
}

const ofType = (t: Template, type: string) =>
  Object.entries(t.Resources).filter(([, r]) => r.Type === type);
/** A role's statements; one under `Fn::If` counts as its "true" branch (its widest). */
const statements = (role: Resource) =>
  role.Properties.Policies.flatMap((p: { PolicyDocument: { Statement: Json[] } }) =>
    p.PolicyDocument.Statement.map((s: Json) => (s["Fn::If"] ? s["Fn::If"][1] : s)),
  );
const actionsOn = (role: Resource, action: string) =>
  statements(role).filter((s: { Action: string[] }) => s.Action.includes(action));

let template: Template;
let withExistingSecret: Template;
let withJwt: Template;
const EXISTING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zoho-AbCdEf";
const HUBSPOT = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-AbCdEf";

beforeAll(() => {
  template = packageTemplate();
  withExistingSecret = packageTemplate([
    `--param=zohoSecretArn=${EXISTING}`,
    "--param=httpApiThrottleRate=5",
    "--param=httpApiThrottleBurst=7",
    "--param=httpApiReservedConcurrency=3",
    "--param=syncBucket=crm-exports",
    `--param=hubspotSecretArn=${HUBSPOT}`,
    "--param=alarmTopicArn=arn:aws:sns:us-east-1:123456789012:ops",
  ]);
  withJwt = packageTemplate([
    "--param=authorizer=jwt",
    "--param=jwtIssuerUrl=https://issuer.example.com",
    "--param=jwtAudience=zoho-contact-status",
  ]);
}, 240_000);

describe("the packaged CloudFormation template", () => {
  it("runs every function on nodejs24.x, arm64, with its own role", () => {
    const functions = ofType(template, "AWS::Lambda::Function");
    expect(functions).toHaveLength(4);
    const roles = new Set<string>();
    for (const [, fn] of functions) {
      expect(fn.Properties.Runtime).toBe("nodejs24.x");
      expect(fn.Properties.Architectures).toEqual(["arm64"]);
      roles.add(fn.Properties.Role["Fn::GetAtt"][0]);
    }
    expect(roles.size).toBe(4);
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it.each([
    ["ActivationQueue", "ActivationDLQ"],
    ["BulkQueue", "BulkDLQ"],
  ])(
    "redrives %s to its own DLQ after 5 receives, with a visibility of at least 6 x the worker's timeout",
    (name, dlq) => {
      const queue = template.Resources[name] as Resource;
      expect(queue.Properties.RedrivePolicy).toEqual({
        deadLetterTargetArn: { "Fn::GetAtt": [dlq, "Arn"] },
        maxReceiveCount: 5,
      });
      const worker = template.Resources.SqsWorkerLambdaFunction as Resource;
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
        6 * worker.Properties.Timeout,
      );
      expect(template.Resources[dlq]?.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    },
  );

  it("encrypts the four queues", () => {
    for (const name of ["ActivationQueue", "ActivationDLQ", "BulkQueue", "BulkDLQ"]) {
      expect(template.Resources[name]?.Properties.SqsManagedSseEnabled).toBe(true);
    }
  });

  it("has the ledger table: on demand, keyed pk/sk, TTL on expires_at, encrypted, kept on delete", () => {
    expect(template.Resources.LedgerTable).toMatchObject({
      Type: "AWS::DynamoDB::Table",
      DeletionPolicy: "Retain",
      Properties: {
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        TimeToLiveSpecification: { AttributeName: "expires_at", Enabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
    for (const [, fn] of ofType(template, "AWS::Lambda::Function")) {
      expect(fn.Properties.Environment.Variables.ZOHO_LEDGER_TABLE).toEqual({ Ref: "LedgerTable" });
    }
  });

  it("feeds the worker from each queue on its own: batches of 10, partial batch responses, at most 2 at once", () => {
    const mappings = ofType(template, "AWS::Lambda::EventSourceMapping").map(
      ([, m]) => m.Properties,
    );
    expect(mappings.map((m) => m.EventSourceArn["Fn::GetAtt"][0]).sort()).toEqual([
      "ActivationQueue",
      "BulkQueue",
    ]);
    for (const mapping of mappings) {
      expect(mapping).toMatchObject({
        BatchSize: 10,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        ScalingConfig: { MaximumConcurrency: 2 },
      });
    }
  });

  it("authorizes every route but /health and the webhooks (their own secrets) with AWS_IAM by default, and with the JWT authorizer when asked", () => {
    const authorization = (t: Template) =>
      Object.fromEntries(
        ofType(t, "AWS::ApiGatewayV2::Route").map(([, r]) => [
          r.Properties.RouteKey,
          [r.Properties.AuthorizationType ?? "NONE", r.Properties.AuthorizerId !== undefined],
        ]),
      );
    expect(authorization(template)).toEqual({
      "GET /health": ["NONE", false],
      "POST /webhooks/{source}": ["NONE", false],
      "GET /activations/{job_id}": ["AWS_IAM", false],
      "GET /contacts/{contact_id}/history": ["AWS_IAM", false],
      "POST /activations": ["AWS_IAM", false],
      "POST /contacts/{contact_id}/active": ["AWS_IAM", false],
      "POST /contacts/{contact_id}/inactive": ["AWS_IAM", false],
      $default: ["AWS_IAM", false],
    });
    expect(authorization(withJwt)).toEqual({
      "GET /health": ["NONE", false],
      "POST /webhooks/{source}": ["NONE", false],
      "GET /activations/{job_id}": ["JWT", true],
      "GET /contacts/{contact_id}/history": ["JWT", true],
      "POST /activations": ["JWT", true],
      "POST /contacts/{contact_id}/active": ["JWT", true],
      "POST /contacts/{contact_id}/inactive": ["JWT", true],
      $default: ["JWT", true],
    });
    const [[, authorizer] = []] = ofType(withJwt, "AWS::ApiGatewayV2::Authorizer");
    expect(authorizer?.Properties.JwtConfiguration).toEqual({
      Audience: ["zoho-contact-status"],
      Issuer: "https://issuer.example.com",
    });
  });

  it("sends every other method and path to the function ($default), which answers 404/405 itself", () => {
    const [[, route] = []] = ofType(template, "AWS::ApiGatewayV2::Route").filter(
      ([, r]) => r.Properties.RouteKey === "$default",
    );
    const [[integration] = []] = ofType(template, "AWS::ApiGatewayV2::Integration");
    expect(route?.Properties.Target).toEqual({
      "Fn::Join": ["/", ["integrations", { Ref: integration }]],
    });
  });

  it("throttles the stage's default route, by params", () => {
    const throttling = (t: Template) => {
      const { ThrottlingBurstLimit, ThrottlingRateLimit } =
        t.Resources.HttpApiStage?.Properties.DefaultRouteSettings ?? {};
      return { ThrottlingBurstLimit, ThrottlingRateLimit };
    };
    expect(throttling(template)).toEqual({ ThrottlingBurstLimit: 50, ThrottlingRateLimit: 25 });
    expect(throttling(withExistingSecret)).toEqual({
      ThrottlingBurstLimit: 7,
      ThrottlingRateLimit: 5,
    });
  });

  it("reserves (and caps) the http-api function's concurrency, by param", () => {
    const reserved = (t: Template) =>
      t.Resources.HttpApiLambdaFunction?.Properties.ReservedConcurrentExecutions;
    expect(reserved(template)).toBe(10);
    expect(reserved(withExistingSecret)).toBe(3);
  });

  it("writes JSON access logs with the request id, route, status, latency and source IP, never a header or the query string", () => {
    const stage = template.Resources.HttpApiStage as Resource & { DependsOn: string };
    const settings = stage.Properties.AccessLogSettings;
    expect(settings.DestinationArn).toEqual({ "Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"] });
    expect(stage.DependsOn).toBe("HttpApiAccessLogGroup");
    const format = JSON.parse(settings.Format);
    expect(format).toMatchObject({
      requestId: "$context.requestId",
      routeKey: "$context.routeKey",
      status: "$context.status",
      responseLatency: "$context.responseLatency",
      sourceIp: "$context.identity.sourceIp",
    });
    expect(settings.Format).not.toMatch(/header|querystring|\$request|authorization/i);
    // The function keeps its own log group: osls gives both the same logical id.
    expect(template.Resources.HttpApiAccessLogGroup?.Properties.LogGroupName).toBe(
      "/aws/http-api/zoho-contact-status-ci",
    );
    expect(template.Resources.HttpApiLogGroup?.Properties.LogGroupName).toBe(
      "/aws/lambda/zoho-contact-status-ci-httpApi",
    );
  });

  it.each([
    [["--param=authorizer=oidc"], 'Unknown authorizer "oidc": set --param=authorizer=iam'],
    [["--param=authorizer=jwt"], "authorizer=jwt needs --param=jwtIssuerUrl="],
    [
      ["--param=authorizer=jwt", "--param=jwtIssuerUrl=https://issuer.example.com"],
      "authorizer=jwt needs --param=jwtIssuerUrl=",
    ],
  ])("fails packaging with %j in one line that says what to set", (params, message) => {
    let output = "";
    try {
      packageTemplate(params);
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
      output = `${stdout ?? ""}${stderr ?? ""}`;
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal colours
    const lines = output.replace(/\u001b\[[0-9;]*m/g, "").split("\n");
    const at = lines.findIndex((line) => line.trim() === "Error:");
    expect(at, output).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toContain(message);
    expect(lines[at + 1]).toMatch(/\.$/); // the whole sentence on that one line
  });

  it("refreshes the token every 30 minutes, and leaves the sync off until configured", () => {
    const rules = Object.fromEntries(
      ofType(template, "AWS::Events::Rule").map(([k, r]) => [k, r.Properties]),
    );
    expect(rules.ScheduledTokenRefreshEventsRuleSchedule1).toMatchObject({
      ScheduleExpression: "rate(30 minutes)",
      State: "ENABLED",
    });
    expect(rules.ScheduledSyncEventsRuleSchedule1?.State).toBe("DISABLED");
  });

  it("runs the sync hourly (incremental) and daily (full), the CRM watch every 6 hours, its input in SYNC_INPUT, and never retries a failed run", () => {
    const rules = Object.fromEntries(
      ofType(template, "AWS::Events::Rule").map(([k, r]) => [k, r.Properties]),
    );
    expect(rules.ScheduledSyncEventsRuleSchedule1).toMatchObject({
      ScheduleExpression: "rate(1 hour)",
      Targets: [{ Input: '{"mode":"incremental"}' }],
    });
    expect(rules.ScheduledSyncEventsRuleSchedule2).toMatchObject({
      ScheduleExpression: "rate(1 day)",
      State: "DISABLED",
      Targets: [{ Input: '{"mode":"full"}' }],
    });
    expect(rules.ScheduledSyncEventsRuleSchedule3).toMatchObject({
      ScheduleExpression: "rate(6 hours)",
      State: "DISABLED",
      Targets: [{ Input: '{"mode":"watch"}' }],
    });
    const sync = template.Resources.ScheduledSyncLambdaFunction as Resource;
    expect(sync.Properties.Environment.Variables.SYNC_INPUT).toBe("{}");
    // the notification channel's notify_url: the HTTP API's own URL
    expect(JSON.stringify(sync.Properties.Environment.Variables.API_BASE_URL)).toContain(
      '"Ref":"HttpApi"',
    );
    // EventBridge invokes asynchronously: without this, Lambda runs a failed sync twice more,
    // listing Books three times.
    const invokeConfigs = ofType(template, "AWS::Lambda::EventInvokeConfig").map(([, r]) => r);
    expect(invokeConfigs).toContainEqual(
      expect.objectContaining({
        Properties: expect.objectContaining({
          FunctionName: { Ref: "ScheduledSyncLambdaFunction" },
          MaximumRetryAttempts: 0,
        }),
      }),
    );
  });

  it("lets the sync read the syncBucket param's objects only, and nothing from S3 without it", () => {
    const s3Statements = (t: Template) =>
      statements(t.Resources.ScheduledSyncRole as Resource).filter((s: { Action: string[] }) =>
        s.Action.some((a) => a.startsWith("s3:")),
      );
    const [statement] = s3Statements(withExistingSecret);
    expect(statement.Action).toEqual(["s3:GetObject"]);
    expect(statement.Resource).toEqual({
      "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":s3:::crm-exports/*"]],
    });
    const raw = (withExistingSecret.Resources.ScheduledSyncRole as Resource).Properties.Policies[0]
      .PolicyDocument.Statement;
    expect(raw.at(-1)["Fn::If"][0]).toBe("HasSyncBucket");
    for (const [name, role] of ofType(template, "AWS::IAM::Role")) {
      if (name !== "ScheduledSyncRole") expect(JSON.stringify(role)).not.toContain("s3:");
    }
  });

  it.each([
    ["SyncFailedAlarm", "ScheduledSyncLambdaFunction"],
    ["TokenRefreshFailedAlarm", "ScheduledTokenRefreshLambdaFunction"],
  ])("%s fires on any error of %s, to the alarm topic", (alarm, fn) => {
    expect(template.Resources[alarm]?.Properties).toMatchObject({
      Namespace: "AWS/Lambda",
      MetricName: "Errors",
      Statistic: "Sum",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
      TreatMissingData: "notBreaching",
      Dimensions: [{ Name: "FunctionName", Value: { Ref: fn } }],
    });
    expect(withExistingSecret.Resources[alarm]?.Properties.AlarmActions).toEqual({
      "Fn::If": [
        "HasAlarmTopic",
        ["arn:aws:sns:us-east-1:123456789012:ops"],
        { Ref: "AWS::NoValue" },
      ],
    });
  });

  it("names the secret, queues and table in every permission, never '*'", () => {
    for (const [name, role] of ofType(template, "AWS::IAM::Role")) {
      for (const statement of statements(role)) {
        const services = new Set(statement.Action.map((a: string) => a.split(":")[0]));
        expect(statement.Resource, `${name}: ${statement.Action}`).not.toBe("*");
        expect(JSON.stringify(statement.Resource)).not.toMatch(/"\*"/);
        if (services.has("secretsmanager")) {
          expect([
            { "Fn::If": ["CreateZohoSecret", { Ref: "ZohoSecret" }, ""] },
            { "Fn::If": ["CreateWebhookSecret", { Ref: "WebhookSecret" }, ""] },
            "", // the hubspotSecretArn param, under its HasHubSpotSecret condition (below)
          ]).toContainEqual(statement.Resource);
        }
        if (services.has("events")) {
          expect(JSON.stringify(statement.Resource)).toContain(":event-bus/default");
        }
        for (const resource of [statement.Resource].flat()) {
          if (services.has("sqs")) {
            expect(["ActivationQueue", "ActivationDLQ", "BulkQueue", "BulkDLQ"]).toContain(
              resource["Fn::GetAtt"][0],
            );
          }
          if (services.has("dynamodb"))
            expect(resource).toEqual({ "Fn::GetAtt": ["LedgerTable", "Arn"] });
        }
      }
    }
  });

  it("lets the API send to the activation queue, the sync to the bulk queue, and the worker resend and park", () => {
    const sends = Object.fromEntries(
      ofType(template, "AWS::IAM::Role").map(([name, role]) => [
        name,
        actionsOn(role, "sqs:SendMessage")
          .flatMap((s: { Resource: Json }) => [s.Resource].flat())
          .map((r: { "Fn::GetAtt": string[] }) => r["Fn::GetAtt"][0])
          .sort(),
      ]),
    );
    expect(sends).toEqual({
      HttpApiRole: ["ActivationQueue"],
      SqsWorkerRole: ["ActivationDLQ", "ActivationQueue", "BulkDLQ", "BulkQueue"],
      ScheduledSyncRole: ["BulkQueue"],
      TokenRefreshRole: [],
    });
    const worker = template.Resources.SqsWorkerRole as Resource;
    expect(actionsOn(worker, "sqs:ChangeMessageVisibility")).toHaveLength(1);
  });

  it("lets every function read the secret and none write it (no PutSecretValue anywhere); only the API reads the webhook secret", () => {
    for (const [name, role] of ofType(template, "AWS::IAM::Role")) {
      const onSecret = statements(role).filter((s: { Action: string[] }) =>
        s.Action.some((a) => a.startsWith("secretsmanager:")),
      );
      expect(onSecret.flatMap((s: { Action: string[] }) => s.Action)).toEqual(
        name === "HttpApiRole" || name === "ScheduledSyncRole"
          ? ["secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue"]
          : ["secretsmanager:GetSecretValue"],
      );
    }
    expect(JSON.stringify(template)).not.toContain("PutSecretValue");
  });

  it("lets only the sync read the HubSpot token's secret, named by the hubspotSecretArn param, and none without it", () => {
    const raw = (t: Template) =>
      (t.Resources.ScheduledSyncRole as Resource).Properties.Policies[0].PolicyDocument.Statement;
    const hubspot = (t: Template) =>
      raw(t).find((s: Json) => s["Fn::If"]?.[0] === "HasHubSpotSecret")?.["Fn::If"];
    expect(hubspot(withExistingSecret)?.[1]).toEqual({
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue"],
      Resource: HUBSPOT,
    });
    expect(hubspot(withExistingSecret)?.[2]).toEqual({ Ref: "AWS::NoValue" });
    expect(withExistingSecret.Conditions?.HasHubSpotSecret).toEqual({
      "Fn::Not": [{ "Fn::Equals": [HUBSPOT, ""] }],
    });
    expect(template.Conditions?.HasHubSpotSecret).toEqual({
      "Fn::Not": [{ "Fn::Equals": ["", ""] }],
    });
    for (const [name, role] of ofType(withExistingSecret, "AWS::IAM::Role"))
      if (name !== "ScheduledSyncRole") expect(JSON.stringify(role)).not.toContain(HUBSPOT);
    const sync = withExistingSecret.Resources.ScheduledSyncLambdaFunction as Resource;
    expect(sync.Properties.Environment.Variables).toMatchObject({
      HUBSPOT_SECRET_ID: HUBSPOT,
      HUBSPOT_API_URL: "https://api.hubapi.com",
    });
  });

  it("lets only the worker put events, on the named bus only", () => {
    const puts = Object.fromEntries(
      ofType(template, "AWS::IAM::Role").map(([name, role]) => [
        name,
        actionsOn(role, "events:PutEvents").length,
      ]),
    );
    expect(puts).toEqual({
      HttpApiRole: 0,
      SqsWorkerRole: 1,
      ScheduledSyncRole: 0,
      TokenRefreshRole: 0,
    });
  });

  it("gives every function item reads and conditional writes on the ledger, and only what each needs beyond", () => {
    const item = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"];
    const actions = Object.fromEntries(
      ofType(template, "AWS::IAM::Role").map(([name, role]) => [
        name,
        statements(role)
          .filter((s: { Action: string[] }) => s.Action.some((a) => a.startsWith("dynamodb:")))
          .flatMap((s: { Action: string[] }) => s.Action)
          .sort(),
      ]),
    );
    expect(actions).toEqual({
      HttpApiRole: [
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
      ],
      SqsWorkerRole: item,
      ScheduledSyncRole: [
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
      ],
      TokenRefreshRole: item,
    });
  });

  it.each([
    ["DeadLetterAlarm", "ActivationDLQ"],
    ["BulkDeadLetterAlarm", "BulkDLQ"],
  ])("%s fires when anything waits in %s", (alarm, dlq) => {
    expect(template.Resources[alarm]?.Properties).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [dlq, "QueueName"] } }],
    });
  });

  it.each([
    ["ActivationQueueAgeAlarm", "ActivationQueue"],
    ["BulkQueueAgeAlarm", "BulkQueue"],
  ])("%s fires when the oldest job of %s has waited over an hour", (alarm, queue) => {
    expect(template.Resources[alarm]?.Properties).toMatchObject({
      MetricName: "ApproximateAgeOfOldestMessage",
      Threshold: 3600,
      ComparisonOperator: "GreaterThanThreshold",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queue, "QueueName"] } }],
    });
  });

  it("uses an existing secret by ARN instead of creating one", () => {
    const secret = withExistingSecret.Resources.ZohoSecret as Resource;
    expect(secret.Condition).toBe("CreateZohoSecret");
    for (const [, role] of ofType(withExistingSecret, "AWS::IAM::Role")) {
      const [zoho] = actionsOn(role, "secretsmanager:GetSecretValue");
      expect(zoho.Resource).toEqual({
        "Fn::If": ["CreateZohoSecret", { Ref: "ZohoSecret" }, EXISTING],
      });
    }
    const conditions = (withExistingSecret as unknown as { Conditions: Record<string, unknown> })
      .Conditions;
    expect(conditions.CreateZohoSecret).toEqual({ "Fn::Equals": [EXISTING, ""] });
  });

  it("keeps the secret when the stack is deleted", () => {
    expect(template.Resources.ZohoSecret).toMatchObject({
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
  });
});

describe("the CloudWatch dashboard", () => {
  /** The dashboard's body with Fn::Sub's variables filled in as CloudFormation would. */
  function dashboardBody(): { widgets: Array<{ properties: { title: string; metrics: Json[] } }> } {
    const dashboard = template.Resources.Dashboard as Resource;
    expect(dashboard.Type).toBe("AWS::CloudWatch::Dashboard");
    const [body, variables] = dashboard.Properties.DashboardBody["Fn::Sub"];
    const filled = body.replace(/\$\{([\w:.]+)\}/g, (_: string, name: string) => {
      if (name in variables) return variables[name];
      if (name === "AWS::Region") return "us-east-1";
      const [logicalId, attribute] = name.split(".");
      expect(template.Resources, `the body names ${name}`).toHaveProperty(logicalId as string);
      expect(attribute).toBe("QueueName");
      return `${logicalId}-name`;
    });
    return JSON.parse(filled);
  }

  const source = readdirSync(join(ROOT, "lib"), { recursive: true, encoding: "utf8" })
    .map((file) => join("lib", file))
    .concat(readdirSync(join(ROOT, "functions")).map((file) => join("functions", file)))
    .filter((file) => file.endsWith(".ts"))
    .map((file) => readFileSync(join(ROOT, file), "utf8"))
    .join("\n");
  const LANES = ["interactive", "realtime", "bulk"];
  /** Whether the code emits this metric: a literal name, an outcome (`AlreadyActive` = `already_active`), or `<base>.<lane>`. */
  function emitted(name: string): boolean {
    const [base, lane] = name.split(".");
    if (lane !== undefined) return LANES.includes(lane) && source.includes(`"${base}"`);
    const outcome = name.replace(/[A-Z]/g, (c, i: number) => `${i ? "_" : ""}${c.toLowerCase()}`);
    return source.includes(`"${name}"`) || source.includes(`"${outcome}"`);
  }

  it("shows jobs, Zoho's budget by lane, the daily quota, the queues, the DLQs and webhook refusals", () => {
    const titles = dashboardBody().widgets.map((widget) => widget.properties.title);
    expect(titles).toEqual([
      "Jobs done and parked",
      "Zoho calls and refusals by lane",
      "Daily Zoho quota remaining (lowest reported)",
      "Queue depth and oldest message age (s)",
      "Dead-letter queues (parked jobs)",
      "Webhook refusals and sync runs",
    ]);
    expect(template.Outputs.DashboardUrl.Value["Fn::Sub"]).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub syntax
      "#dashboards:name=${Dashboard}",
    );
  });

  it("reads only metrics the code emits, in the namespace and service the functions publish under", () => {
    const custom = dashboardBody()
      .widgets.flatMap((widget) => widget.properties.metrics)
      .filter(([namespace]) => namespace !== "AWS/SQS");
    expect(custom.length).toBeGreaterThan(15);
    for (const [namespace, name, dimension, service] of custom) {
      expect([namespace, dimension, service]).toEqual([
        "ZohoContactStatus",
        "service",
        "zoho-contact-status",
      ]);
      expect(emitted(name), `${name} is emitted by lib/ or functions/`).toBe(true);
    }
    expect(emitted("NoSuchMetric")).toBe(false);
    expect(emitted("ZohoCalls.nolane")).toBe(false);
  });
});
