// The user's producer: adds jobs, or reports what BullMQ says about them.
//   node producer.js <redis-url> <queue> add <n> [<gate> <k>]  → {"waiting": getWaitingCount()}
//     (the last k jobs carry {gate}: worker.js holds them until that file exists)
//   node producer.js <redis-url> <queue> report       → {"counts": getJobCounts(), "attempts": {id: attemptsStarted}}
const path = require("path");
const { Queue } = require(path.join(process.env.BULLMQ_DIR, "node_modules", "bullmq"));

async function main() {
  const [url, name, cmd, n, gate, gated] = process.argv.slice(2);
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port || 6379), db: Number((u.pathname || "/0").slice(1) || 0) };
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  if (cmd === "add") {
    const firstGated = gate ? Number(n) - Number(gated || 0) : Number(n);
    for (let i = 0; i < Number(n); i++) {
      await queue.add("video", i >= firstGated ? { i, gate } : { i }, { attempts: 3 });
    }
    process.stdout.write(JSON.stringify({ waiting: await queue.getWaitingCount() }) + "\n");
  } else {
    const jobs = await queue.getJobs(["completed", "failed", "active", "wait", "delayed"]);
    const attempts = {};
    for (const j of jobs) attempts[j.id] = { started: j.attemptsStarted, made: j.attemptsMade, by: j.processedBy || null };
    const workers = (await queue.getWorkers()).map((w) => w.rawname);
    process.stdout.write(JSON.stringify({ counts: await queue.getJobCounts(), attempts, workers }) + "\n");
  }
  await queue.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
