import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

// CloudFormation is untyped JSON; the assertions below say what each part must be.
// biome-ignore lint/suspicious/noExplicitAny: template properties are arbitrary JSON
type Json = any;
type Resource = { Type: string; Properties: Record<string, Json>; Condition?: string };
type Template = { Resources: Record<string, Resource> };

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
const statements = (role: Resource) =>
  role.Properties.Policies.flatMap(
    (p: { PolicyDocument: { Statement: Json[] } }) => p.PolicyDocument.Statement,
  );
const actionsOn = (role: Resource, action: string) =>
  statements(role).filter((s: { Action: string[] }) => s.Action.includes(action));

let template: Template;
let withExistingSecret: Template;
let withJwt: Template;
const EXISTING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zoho-AbCdEf";

beforeAll(() => {
  template = packageTemplate();
  withExistingSecret = packageTemplate([`--param=zohoSecretArn=${EXISTING}`]);
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

  it("redrives the activation queue to the DLQ after 5 receives, with a visibility of at least 6 x the worker's timeout", () => {
    const queue = template.Resources.ActivationQueue as Resource;
    expect(queue.Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": ["ActivationDLQ", "Arn"] },
      maxReceiveCount: 5,
    });
    const worker = template.Resources.SqsWorkerLambdaFunction as Resource;
    expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
      6 * worker.Properties.Timeout,
    );
    expect(template.Resources.ActivationDLQ?.Properties.MessageRetentionPeriod).toBe(
      14 * 24 * 3600,
    );
  });

  it("encrypts both queues", () => {
    for (const name of ["ActivationQueue", "ActivationDLQ"]) {
      expect(template.Resources[name]?.Properties.SqsManagedSseEnabled).toBe(true);
    }
  });

  it("feeds the worker batches of 10 with partial batch responses and at most 2 at once", () => {
    const [[, mapping] = []] = ofType(template, "AWS::Lambda::EventSourceMapping");
    expect(mapping?.Properties).toMatchObject({
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 2 },
      EventSourceArn: { "Fn::GetAtt": ["ActivationQueue", "Arn"] },
    });
  });

  it("authorizes every route with AWS_IAM by default, and with the JWT authorizer when asked", () => {
    const routes = ofType(template, "AWS::ApiGatewayV2::Route");
    expect(routes.map(([, r]) => r.Properties.RouteKey).sort()).toEqual([
      "GET /health",
      "POST /activations",
      "POST /contacts/{contact_id}/active",
      "POST /contacts/{contact_id}/inactive",
    ]);
    for (const [, route] of routes) expect(route.Properties.AuthorizationType).toBe("AWS_IAM");
    for (const [, route] of ofType(withJwt, "AWS::ApiGatewayV2::Route")) {
      expect(route.Properties.AuthorizationType).toBe("JWT");
      expect(route.Properties.AuthorizerId).toBeDefined();
    }
    const [[, authorizer] = []] = ofType(withJwt, "AWS::ApiGatewayV2::Authorizer");
    expect(authorizer?.Properties.JwtConfiguration).toEqual({
      Audience: ["zoho-contact-status"],
      Issuer: "https://issuer.example.com",
    });
  });

  it("refreshes the token every 45 minutes, and leaves the sync off until configured", () => {
    const rules = Object.fromEntries(
      ofType(template, "AWS::Events::Rule").map(([k, r]) => [k, r.Properties]),
    );
    expect(rules.ScheduledTokenRefreshEventsRuleSchedule1).toMatchObject({
      ScheduleExpression: "rate(45 minutes)",
      State: "ENABLED",
    });
    expect(rules.ScheduledSyncEventsRuleSchedule1?.State).toBe("DISABLED");
  });

  it("names the secret and queues in every secret or queue permission, never '*'", () => {
    for (const [name, role] of ofType(template, "AWS::IAM::Role")) {
      for (const statement of statements(role)) {
        const services = new Set(statement.Action.map((a: string) => a.split(":")[0]));
        expect(statement.Resource, `${name}: ${statement.Action}`).not.toBe("*");
        expect(JSON.stringify(statement.Resource)).not.toMatch(/"\*"/);
        if (services.has("secretsmanager")) {
          expect(statement.Resource).toEqual({
            "Fn::If": ["CreateZohoSecret", { Ref: "ZohoSecret" }, ""],
          });
        }
        if (services.has("sqs")) {
          expect(["ActivationQueue", "ActivationDLQ"]).toContain(
            statement.Resource["Fn::GetAtt"][0],
          );
        }
      }
    }
  });

  it("lets only the API and the sync send to the queue, and only the worker send to the DLQ", () => {
    const sends = Object.fromEntries(
      ofType(template, "AWS::IAM::Role").map(([name, role]) => [
        name,
        actionsOn(role, "sqs:SendMessage").map(
          (s: { Resource: { "Fn::GetAtt": string[] } }) => s.Resource["Fn::GetAtt"][0],
        ),
      ]),
    );
    expect(sends).toEqual({
      HttpApiRole: ["ActivationQueue"],
      SqsWorkerRole: ["ActivationDLQ"],
      ScheduledSyncRole: ["ActivationQueue"],
      TokenRefreshRole: [],
    });
    const worker = template.Resources.SqsWorkerRole as Resource;
    expect(actionsOn(worker, "sqs:ChangeMessageVisibility")).toHaveLength(1);
  });

  it("grants secret reads and token write-backs on the secret only, and nothing else on it", () => {
    for (const [, role] of ofType(template, "AWS::IAM::Role")) {
      const onSecret = statements(role).filter((s: { Action: string[] }) =>
        s.Action.some((a) => a.startsWith("secretsmanager:")),
      );
      expect(onSecret.flatMap((s: { Action: string[] }) => s.Action).sort()).toEqual([
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
      ]);
    }
  });

  it("alarms when anything waits in the DLQ", () => {
    expect(template.Resources.DeadLetterAlarm?.Properties).toMatchObject({
      MetricName: "ApproximateNumberOfMessagesVisible",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": ["ActivationDLQ", "QueueName"] } }],
    });
  });

  it("uses an existing secret by ARN instead of creating one", () => {
    const secret = withExistingSecret.Resources.ZohoSecret as Resource;
    expect(secret.Condition).toBe("CreateZohoSecret");
    for (const [, role] of ofType(withExistingSecret, "AWS::IAM::Role")) {
      for (const statement of actionsOn(role, "secretsmanager:GetSecretValue")) {
        expect(statement.Resource).toEqual({
          "Fn::If": ["CreateZohoSecret", { Ref: "ZohoSecret" }, EXISTING],
        });
      }
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
