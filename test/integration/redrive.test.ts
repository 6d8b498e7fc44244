import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { parkJob } from "../../lib/jobs/queue";
import { type LocalAws, startLocalAws } from "../../local/aws";
import { createQueueWithDlq } from "../../local/stack/queues";
import { listParked, moveBack, release, run, USAGE } from "../../scripts/redrive";

const ROOT = resolve(import.meta.dirname, "../..");
const TSX = resolve(ROOT, "node_modules/.bin/tsx");

let aws: LocalAws;
let sqs: SQSClient;
let env: Record<string, string>;
beforeAll(async () => {
  aws = await startLocalAws();
  sqs = new SQSClient({
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "l", secretAccessKey: "l" },
  });
});
afterAll(() => aws.close());

// the two lanes as the local stack creates them, and only their URLs, as the README exports them
beforeEach(async () => {
  aws.reset();
  const activation = await createQueueWithDlq(sqs, {
    queue: "activation-queue",
    dlq: "activation-dlq",
    visibilityTimeoutSeconds: 100,
  });
  const bulk = await createQueueWithDlq(sqs, {
    queue: "bulk-queue",
    dlq: "bulk-dlq",
    visibilityTimeoutSeconds: 100,
  });
  env = {
    ACTIVATION_QUEUE_URL: activation.queueUrl,
    ACTIVATION_DLQ_URL: activation.dlqUrl,
    BULK_QUEUE_URL: bulk.queueUrl,
    BULK_DLQ_URL: bulk.dlqUrl,
  };
});

const park = (dlqUrl: string, body: string, code: string, messageId = "m") =>
  parkJob(sqs, dlqUrl, { body, messageId }, new ServiceError(code as never, `${code} reason.`), 5);

/** the CLI in-process: its exit code and what it printed */
async function redrive(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, {
    log: (line) => out.push(line),
    error: (line) => err.push(line),
    env,
    pollMs: 20,
    waitSeconds: 0,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** the CLI as a user runs it, with nothing in its environment but what is given */
async function redriveProcess(argv: string[], extraEnv: Record<string, string>) {
  const home = await mkdtemp(join(tmpdir(), "redrive-home-"));
  try {
    const { stdout, stderr } = await promisify(execFile)(TSX, ["scripts/redrive.ts", ...argv], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: home, AWS_EC2_METADATA_DISABLED: "true", ...extraEnv },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe("npm run redrive", () => {
  it("lists parked jobs with their reasons and moves the chosen ones back, bodies unchanged", async () => {
    const bodies = ['{"contact_id":"1"}', '{"contact_id":"2"}', '{"email":"a@example.com"}'];
    await park(env.ACTIVATION_DLQ_URL as string, bodies[0] as string, "CONTACT_NOT_FOUND");
    await park(env.ACTIVATION_DLQ_URL as string, bodies[1] as string, "CONTACT_NOT_FOUND");
    await park(env.ACTIVATION_DLQ_URL as string, bodies[2] as string, "CONTACT_AMBIGUOUS");

    const dlqUrl = env.ACTIVATION_DLQ_URL as string;
    const parked = await listParked(sqs, dlqUrl, { waitSeconds: 0 });
    expect(parked.map((job) => [job.body, job.code, job.reason, job.attempts])).toEqual([
      [bodies[0], "CONTACT_NOT_FOUND", "CONTACT_NOT_FOUND reason.", "5"],
      [bodies[1], "CONTACT_NOT_FOUND", "CONTACT_NOT_FOUND reason.", "5"],
      [bodies[2], "CONTACT_AMBIGUOUS", "CONTACT_AMBIGUOUS reason.", "5"],
    ]);
    // hidden while listed, for longer than a listing takes
    expect(aws.queueMessages("activation-dlq").every((m) => !m.visible)).toBe(true);

    const chosen = parked.filter((job) => job.code === "CONTACT_NOT_FOUND");
    expect(await moveBack(sqs, chosen, env.ACTIVATION_QUEUE_URL as string, dlqUrl)).toHaveLength(2);
    await release(sqs, dlqUrl, parked.slice(2));
    expect(aws.queueMessages("activation-queue").map((m) => m.body)).toEqual([
      bodies[0],
      bodies[1],
    ]);
    expect(aws.queueMessages("activation-dlq")).toMatchObject([{ body: bodies[2], visible: true }]);
  });

  it("--help prints the usage and exits 0; a wrong option or command says so in one line, with the usage, exit 2", async () => {
    const help = await redriveProcess(["--help"], {});
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout.trim()).toBe(USAGE);

    const wrong = await redriveProcess(["list", "--frobnicate"], {});
    expect(wrong.code).toBe(2);
    const [first, ...rest] = wrong.stderr.trim().split("\n");
    expect(first).toBe("redrive: unknown option --frobnicate");
    expect(rest.join("\n")).toBe(USAGE);
    expect(wrong.stderr).not.toMatch(/\n\s+at |ERR_PARSE_ARGS/);

    for (const [argv, line] of [
      [[], "redrive: no command given"],
      [["move"], "redrive: move needs message ids, --code CODE or --all"],
      [["move", "--code"], "redrive: --code needs a value"],
      [["move", "--all", "--code", "X"], "redrive: move takes one of: message ids, --code, --all"],
      [["list", "--queue", "other"], "redrive: --queue must be activation or bulk, not other"],
      [["purge"], "redrive: unknown command purge"],
      [
        ["move", "--all", "--rate", "0"],
        "redrive: --rate must be a whole number from 1 to 500, not 0",
      ],
    ] as const) {
      const answer = await redrive(...argv);
      expect(answer.code, argv.join(" ")).toBe(2);
      expect(answer.err.split("\n")[0]).toBe(line);
      expect(answer.err).toContain(USAGE);
    }
  });

  it("finds the local stack's endpoint and credentials from the queue URLs alone; says what is missing otherwise", async () => {
    await park(env.BULK_DLQ_URL as string, '{"contact_id":"7"}', "CONTACT_NOT_FOUND");
    const local = await redriveProcess(["list"], env);
    expect(local.stderr).toBe("");
    expect(local).toMatchObject({ code: 0 });
    expect(local.stdout).toContain("activation-dlq: 0 parked job(s)");
    expect(local.stdout).toContain("bulk-dlq: 1 parked job(s)");

    const noUrls = await redriveProcess(["move", "--all"], {});
    expect(noUrls.code).toBe(2);
    expect(noUrls.stderr.trim()).toBe(
      "redrive: set ACTIVATION_DLQ_URL and ACTIVATION_QUEUE_URL and BULK_DLQ_URL and BULK_QUEUE_URL (the stack's outputs, or what npm start prints)",
    );

    const aws = { ACTIVATION_DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq" };
    const noCredentials = await redriveProcess(["list", "--queue", "activation"], aws);
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.stderr.trim()).toBe(
      "redrive: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
    const noRegion = await redriveProcess(["list", "--queue", "activation"], {
      ACTIVATION_DLQ_URL: "https://queues.example.com/123456789012/dlq",
    });
    expect(noRegion.code).toBe(1);
    expect(noRegion.stderr.trim()).toMatch(/^redrive: no AWS region: set AWS_REGION/);
  }, 60_000);

  it("list twice in a row shows the same jobs: a listing leaves them visible", async () => {
    await park(env.ACTIVATION_DLQ_URL as string, '{"contact_id":"1"}', "CONTACT_NOT_FOUND");
    await park(env.ACTIVATION_DLQ_URL as string, '{"contact_id":"2"}', "ZOHO_UNAUTHORIZED");
    await park(env.BULK_DLQ_URL as string, '{"contact_id":"3"}', "CONTACT_NOT_FOUND");
    const first = await redrive("list");
    const second = await redrive("list");
    expect(first.code).toBe(0);
    expect(first.out).toContain("activation-dlq: 2 parked job(s)");
    expect(first.out).toContain("bulk-dlq: 1 parked job(s)");
    expect(first.out).toMatch(/CONTACT_NOT_FOUND .*5 attempt\(s\)\s+CONTACT_NOT_FOUND reason\./);
    expect(second.out).toBe(first.out);
    expect((await redrive("list", "--queue", "bulk")).out).toContain("bulk-dlq: 1 parked job(s)");
  });

  it("move --code right after a list moves what matched, from both DLQs, and leaves the rest visible", async () => {
    await park(env.ACTIVATION_DLQ_URL as string, '{"contact_id":"1"}', "CONTACT_NOT_FOUND");
    await park(env.ACTIVATION_DLQ_URL as string, '{"contact_id":"2"}', "ZOHO_UNAUTHORIZED");
    await park(env.BULK_DLQ_URL as string, '{"contact_id":"3"}', "CONTACT_NOT_FOUND");
    await redrive("list");
    const moved = await redrive("move", "--code", "CONTACT_NOT_FOUND");
    expect(moved).toMatchObject({ code: 0, err: "" });
    expect(moved.out).toContain("moved 2 job(s) back");
    expect(aws.queueMessages("activation-queue").map((m) => m.body)).toEqual([
      '{"contact_id":"1"}',
    ]);
    expect(aws.queueMessages("bulk-queue").map((m) => m.body)).toEqual(['{"contact_id":"3"}']);
    expect(aws.queueMessages("activation-dlq")).toMatchObject([
      { body: '{"contact_id":"2"}', visible: true },
    ]);
    expect(aws.queueMessages("bulk-dlq")).toEqual([]);

    expect((await redrive("move", "--code", "NOPE")).out).toContain("nothing matched");
    const [left] = aws.queueMessages("activation-dlq");
    const byId = await redrive("move", left?.messageId as string, "not-an-id");
    expect(byId.code).toBe(1);
    expect(byId.err).toBe("redrive: not parked: not-an-id");
    expect(aws.queueMessages("activation-dlq")).toEqual([]);
    expect(aws.queueMessages("activation-queue")).toHaveLength(2);
  });

  it("move --all uses SQS's move task, to the queue each DLQ belongs to, and reports progress until done", async () => {
    for (const id of ["1", "2", "3"]) {
      await park(env.ACTIVATION_DLQ_URL as string, `{"contact_id":"${id}"}`, "CONTACT_NOT_FOUND");
    }
    await park(env.BULK_DLQ_URL as string, '{"contact_id":"9"}', "ZOHO_UNAUTHORIZED");
    const moved = await redrive("move", "--all", "--rate", "10");
    expect(moved).toMatchObject({ code: 0, err: "" });
    expect(aws.stats().calls["AmazonSQS.StartMessageMoveTask"]).toBe(2);
    expect(moved.out).toContain("activation-dlq → activation-queue: move started");
    expect(moved.out).toContain(
      "activation-dlq → activation-queue: COMPLETED, 3 of 3 job(s) moved",
    );
    expect(moved.out).toContain("bulk-dlq → bulk-queue: COMPLETED, 1 of 1 job(s) moved");
    expect(aws.queueMessages("activation-queue")).toHaveLength(3);
    expect(aws.queueMessages("bulk-queue").map((m) => m.body)).toEqual(['{"contact_id":"9"}']);
    expect(aws.queueMessages("activation-dlq")).toEqual([]);
    expect(aws.queueMessages("bulk-dlq")).toEqual([]);
  });

  it("move --all while a move runs says so; cancel stops it", async () => {
    for (const id of ["1", "2", "3", "4", "5"]) {
      await park(env.ACTIVATION_DLQ_URL as string, `{"contact_id":"${id}"}`, "CONTACT_NOT_FOUND");
    }
    const slow = redrive("move", "--all", "--queue", "activation", "--rate", "1");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const again = await redrive("move", "--all", "--queue", "activation");
    expect(again.code).toBe(1);
    expect(again.err).toMatch(
      /^redrive: activation-dlq → activation-queue: There is already a task running/,
    );
    const cancel = await redrive("cancel", "--queue", "activation");
    expect(cancel.out).toMatch(/^activation-dlq: move cancelled after \d job\(s\)$/);
    const ended = await slow;
    expect(ended.code).toBe(1);
    expect(ended.out).toContain("CANCELLED");
    expect((await redrive("cancel")).out).toBe(
      "activation-dlq: no move running\nbulk-dlq: no move running",
    );
  });
});
