// A user's own BullMQ worker (seed 002's bun + pm2 worker, reduced): the stand-in for the process
// an EC2 instance would run. It is named after its instance, as docs/foreign-pools.md asks:
//   node worker.js <redis-url> <queue> <name|-> <job-ms>
// Prints one JSON line per event: ready, start <job>, done <job>. SIGTERM closes it gracefully.
// A job whose data has `gate` (a file path) is held after its start until that file exists (at most
// 120 s), then takes <job-ms> like the others: the test decides when it may finish.
const fs = require("fs");
const path = require("path");
const { Worker } = require(path.join(process.env.BULLMQ_DIR, "node_modules", "bullmq"));

const [url, queue, name, jobMs] = process.argv.slice(2);
const u = new URL(url);
const connection = { host: u.hostname, port: Number(u.port || 6379), db: Number((u.pathname || "/0").slice(1) || 0) };
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const opts = { connection, concurrency: 1, lockDuration: 10000, stalledInterval: 5000 };
if (name !== "-") opts.name = name;
const worker = new Worker(queue, async (job) => {
  say({ event: "start", job: job.id });
  if (job.data && job.data.gate) {
    const until = Date.now() + 120000;
    while (!fs.existsSync(job.data.gate) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, Number(jobMs)));
  say({ event: "done", job: job.id });
  return "ok";
}, opts);
worker.on("error", (e) => console.error(String(e)));
worker.waitUntilReady().then(() => say({ event: "ready" }));
process.on("SIGTERM", async () => { await worker.close(); process.exit(0); });
