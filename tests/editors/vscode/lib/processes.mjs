// Processes of the run, found through /proc: code-server keeps its extension host (and so our
// server) alive after the browser goes, so the run finds and ends them by PID.

import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every descendant of `pid`, children before grandchildren. */
export function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** The command line of `pid` as an array, or null when it is gone. */
export function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return null;
  }
}

/** PIDs under `root` that run the language server (`... -m lsp_server serve`). */
export function serverPids(root) {
  return descendants(root).filter((pid) => {
    const argv = commandLine(pid) ?? [];
    const m = argv.indexOf("-m");
    return m >= 0 && argv[m + 1] === "lsp_server" && argv.includes("serve");
  });
}

/** One variable of `pid`'s environment, or null (gone, or not set). */
export function environmentVariable(pid, name) {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((e) => e.startsWith(`${name}=`));
    return entry ? entry.slice(name.length + 1) : null;
  } catch {
    return null;
  }
}

export const alive = (pid) => {
  try {
    process.kill(pid, 0);
    // a zombie still answers signal 0: it has exited, its parent has not reaped it yet
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

const signal = (pid, sig) => {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};

/** SIGTERM `pid` and its whole tree (collected first, so no orphan escapes), then SIGKILL what is left. */
export async function killTree(pid, extra = []) {
  const pids = [pid, ...descendants(pid), ...extra];
  for (const p of [...pids].reverse()) signal(p, "SIGTERM");
  for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100);
  for (const p of pids.filter(alive)) signal(p, "SIGKILL");
  return pids.length;
}

/** Waits up to `ms` for every pid in `pids` to end; returns ms taken, or null when some live on. */
export async function waitForExit(pids, ms) {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (!pids.some(alive)) return Date.now() - start;
    await sleep(50);
  }
  return null;
}

export function freePort() {
  return new Promise((ok, err) => {
    const srv = createServer();
    srv.once("error", err);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** Polls `url` until it answers 200; throws when `proc` exits first or `ms` pass. */
export async function waitForHttp(url, ms, proc) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`code-server exited with code ${proc.exitCode} before it answered`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`code-server did not answer ${url} within ${ms / 1000} s`);
}
