import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { checkPorts, freePort, PortTakenError, portTaken } from "../../local/stack/stack";

const ROOT = resolve(import.meta.dirname, "../..");
const TSX = resolve(ROOT, "node_modules/.bin/tsx");

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((closed) => s.close(closed))));
});

/** something else listening on a port, as a first `npm start` would */
async function occupy(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  servers.push(server);
  return (server.address() as { port: number }).port;
}

/** running, and not a zombie waiting for a reaper */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("npm start", () => {
  it("checks every port before starting anything, naming the first one taken", async () => {
    const taken = await occupy();
    const free = await freePort();
    await expect(
      checkPorts({ httpPort: free, lambdaPort: taken, awsPort: undefined }),
    ).rejects.toEqual(new PortTakenError(taken, "lambdaPort"));
    await expect(checkPorts({ httpPort: free, awsPort: 0 })).resolves.toBeUndefined();
    expect(await portTaken(free)).toBe(false);
  });

  it("a second npm start says in one line which port is taken and which variable moves it", async () => {
    const taken = await occupy();
    const [http, lambda, sandbox] = [await freePort(), await freePort(), await freePort()];
    const started = Date.now();
    const result = await promisify(execFile)(TSX, ["scripts/start.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        HTTP_PORT: String(http),
        LAMBDA_PORT: String(lambda),
        SANDBOX_PORT: String(sandbox),
        AWS_PORT: String(taken),
      },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stdout: "", stderr: "" }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `npm start: port ${taken} is taken (another npm start?); free it, or move it: AWS_PORT=<free port> npm start\n`,
    );
    expect(result.stdout).toBe("");
    expect(Date.now() - started).toBeLessThan(15_000); // serverless-offline never started
    for (const port of [http, lambda, sandbox]) expect(await portTaken(port)).toBe(false);
  }, 30_000);

  it("serverless-offline's process group dies with a SIGKILLed parent, freeing its ports", async () => {
    const port = await freePort();
    // stands for serverless-offline: listens on a port and has a child of its own (esbuild)
    const child = `
      const { spawn } = require("node:child_process");
      const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
      require("node:net").createServer().listen(${port}, "127.0.0.1", () => console.log(sleeper.pid));
    `;
    const parent = spawn(process.execPath, ["--import", "tsx", "test/support/orphan-parent.ts"], {
      cwd: ROOT,
      env: { ...process.env, CHILD_SCRIPT: child },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [line] = await once(parent.stdout, "data");
    const [childPid = 0, grandchildPid = 0] = String(line).trim().split(/\s+/).map(Number);
    expect(alive(childPid) && alive(grandchildPid)).toBe(true);
    expect(await portTaken(port)).toBe(true);

    parent.kill("SIGKILL");
    await vi.waitFor(
      async () => {
        expect(alive(childPid)).toBe(false);
        expect(alive(grandchildPid)).toBe(false);
        expect(await portTaken(port)).toBe(false);
      },
      { timeout: 5_000, interval: 100 },
    );
  }, 30_000);
});
