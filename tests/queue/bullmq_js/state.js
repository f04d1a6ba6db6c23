// Builds a BullMQ queue in a known state with the real BullMQ, then prints what BullMQ itself
// reports, as JSON on one line. Used by tests/queue/test_bullmq.py for each BullMQ major version.
//   node state.js <redis-url> <queue> <plain> <prioritized> <delayed> <active> <paused:0|1>
const path = require("path");
const { Queue, Worker } = require(path.join(process.env.BULLMQ_DIR, "node_modules", "bullmq"));

async function main() {
  const [url, name, plain, prio, delayed, active, paused] = process.argv.slice(2);
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port || 6379), db: Number((u.pathname || "/0").slice(1) || 0) };
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  let held = [];
  let worker = null;
  if (Number(active) > 0) {
    // a worker that takes `active` jobs and holds them (never finishes while we count)
    for (let i = 0; i < Number(active); i++) await queue.add("held", { i });
    let release;
    const gate = new Promise((r) => (release = r));
    let taken = 0;
    const all = new Promise((r) => {
      worker = new Worker(name, async () => { taken += 1; if (taken >= Number(active)) r(); await gate; },
        { connection, concurrency: Number(active), lockDuration: 60000 });
    });
    await all;
    await worker.pause(true).catch(() => {});
    held = [release];
  }
  for (let i = 0; i < Number(plain); i++) await queue.add("plain", { i });
  for (let i = 0; i < Number(prio); i++) await queue.add("prio", { i }, { priority: 1 + (i % 5) });
  for (let i = 0; i < Number(delayed); i++) await queue.add("later", { i }, { delay: 3600_000 });
  if (Number(paused)) await queue.pause();
  const counts = await queue.getJobCounts();
  const waiting = await queue.getWaitingCount();
  const version = await queue.getVersion().catch(() => null);
  const isPaused = await queue.isPaused();
  process.stdout.write(JSON.stringify({ counts, waiting, version, isPaused }) + "\n");
  // keep the active jobs active until the test has read the keys, then stop
  await new Promise((r) => process.stdin.once("data", r));
  held.forEach((r) => r());
  if (worker) await worker.close(true);
  await queue.close();
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
