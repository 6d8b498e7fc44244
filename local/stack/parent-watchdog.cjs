/**
 * Preloaded (`node --require`) into a process the local stack starts in its own process group
 * (serverless-offline), so that it dies with its parent however the parent ends, SIGKILL
 * included: the parent holds the other end of a pipe on the inherited fd
 * LOCAL_STACK_PARENT_FD, and the end of that pipe means the parent is gone. The whole group
 * (esbuild, worker processes) is killed with it, so no port stays taken.
 */
"use strict";
const { isMainThread } = require("node:worker_threads");

const fd = Number(process.env.LOCAL_STACK_PARENT_FD);
if (isMainThread && Number.isInteger(fd) && fd > 2) {
  delete process.env.LOCAL_STACK_PARENT_FD; // for this process only, not its own children
  const { Socket } = require("node:net");
  const parent = new Socket({ fd, readable: true, writable: false });
  const orphaned = () => {
    try {
      process.kill(-process.pid, "SIGKILL"); // the group it leads
    } catch {
      process.kill(process.pid, "SIGKILL");
    }
  };
  parent.once("end", orphaned);
  parent.once("close", orphaned);
  parent.once("error", orphaned);
  parent.resume();
  parent.unref(); // it never keeps the process alive by itself
}
