/**
 * A parent for the parent-death test: starts CHILD_SCRIPT the way the local stack starts
 * serverless-offline (spawnNodeInOwnGroup), prints the child's pid and the pid the child
 * prints (its own child's), then waits to be killed.
 */
import { spawnNodeInOwnGroup } from "../../local/stack/stack";

const child = spawnNodeInOwnGroup("-e", [process.env.CHILD_SCRIPT as string]);
child.stdout?.once("data", (grandchild) =>
  console.log(`${child.pid} ${String(grandchild).trim()}`),
);
setInterval(() => {}, 60_000);
