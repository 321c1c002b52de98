// node-resque's Queue, Worker and Scheduler for resq's interop tests (tests/interop/test_node_resque.py).
//
//   node resque.js work <port> <namespace> <queues,comma> <expect> <timeout s> <job classes,comma>
//     Runs a node-resque Worker on the queues and a Scheduler (which moves delayed jobs due now into their
//     queues), until <expect> jobs ran (exit 0) or the timeout passed (exit 1). Every job class named
//     records its run in the list `interop:ran` (JSON {class, args}), so the test sees what node-resque ran.
//   node resque.js schedule <port> <namespace> <seconds>
//     Runs node-resque's Scheduler alone for that long.
//   node resque.js enqueue <port> <namespace> <jobs JSON>
//     Enqueues each job of the list through node-resque's Queue: {queue, class, args} with `queue.enqueue`,
//     plus {in_ms} with `queue.enqueueIn`; {queue, raw} pushes a payload as another producer (Ruby, PHP)
//     wrote it, with the same connection.
//   node resque.js failed <port> <namespace> [retry]
//     Prints `queue.failed(0, -1)` as JSON; with `retry`, retries each with `queue.retryAndRemoveFailed`.
//   node resque.js workers <port> <namespace>
//     Prints `queue.workers()` as JSON.
//   node resque.js drain <port> <namespace> <queue> <n> <class>
//     bench/resque.py: one node-resque Worker (its defaults, but for a 10 ms idle poll) runs <n> jobs of a
//     no-op <class>; prints the seconds from its start to the last job's end.
"use strict";

const { Queue, Worker, Scheduler } = require("node-resque");
const IORedis = require("ioredis");

function connectionFor(port, namespace) {
  return { pkg: "ioredis", host: "127.0.0.1", port: Number(port), namespace };
}

async function work(connection, port, queues, expect, timeoutS, classes) {
  const log = new IORedis({ host: "127.0.0.1", port: Number(port) });
  let ran = 0;
  const record = (name) => ({
    perform: async (...args) => {
      await log.rpush("interop:ran", JSON.stringify({ class: name, args }));
      ran += 1;
      return name;
    },
  });
  const jobs = Object.fromEntries(classes.split(",").map((name) => [name, record(name)]));
  const worker = new Worker({ connection, queues: queues.split(","), timeout: 50 }, jobs);
  const scheduler = new Scheduler({ connection, timeout: 100 });
  worker.on("error", (error) => console.error("worker error", error));
  scheduler.on("error", (error) => console.error("scheduler error", error));
  await worker.connect();
  await scheduler.connect();
  worker.start();
  scheduler.start();
  const deadline = Date.now() + Number(timeoutS) * 1000;
  while (ran < Number(expect) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await scheduler.end();
  await worker.end();
  log.disconnect();
  return ran >= Number(expect) ? 0 : 1;
}

async function schedule(connection, seconds) {
  const scheduler = new Scheduler({ connection, timeout: 100 });
  scheduler.on("error", (error) => console.error("scheduler error", error));
  await scheduler.connect();
  scheduler.start();
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  await scheduler.end();
  return 0;
}

async function withQueue(connection, action) {
  const queue = new Queue({ connection });
  queue.on("error", (error) => console.error("queue error", error));
  await queue.connect();
  try {
    await action(queue);
  } finally {
    await queue.end();
  }
  return 0;
}

async function enqueue(queue, jobs) {
  for (const job of jobs) {
    if (job.raw !== undefined) {
      await queue.connection.redis.sadd(queue.connection.key("queues"), job.queue);
      await queue.connection.redis.rpush(queue.connection.key("queue", job.queue), job.raw);
    } else if (job.in_ms !== undefined) {
      await queue.enqueueIn(job.in_ms, job.queue, job.class, job.args);
    } else {
      await queue.enqueue(job.queue, job.class, job.args);
    }
  }
}

async function failed(queue, retry) {
  const records = await queue.failed(0, -1);
  if (retry) for (const record of records) await queue.retryAndRemoveFailed(record);
  console.log(JSON.stringify(records));
}

async function drain(connection, queue, n, cls) {
  let ran = 0;
  const worker = new Worker(
    { connection, queues: [queue], timeout: 10 },
    { [cls]: { perform: async () => { ran += 1; } } },
  );
  worker.on("error", (error) => console.error("worker error", error));
  await worker.connect();
  const began = process.hrtime.bigint();
  worker.start();
  while (ran < Number(n)) await new Promise((r) => setImmediate(r));
  const seconds = Number(process.hrtime.bigint() - began) / 1e9;
  await worker.end();
  console.log(JSON.stringify({ seconds }));
  return 0;
}

async function main() {
  const [, , mode, port, namespace, ...rest] = process.argv;
  const connection = connectionFor(port, namespace);
  switch (mode) {
    case "work":
      return work(connection, port, ...rest);
    case "schedule":
      return schedule(connection, rest[0]);
    case "enqueue":
      return withQueue(connection, (queue) => enqueue(queue, JSON.parse(rest[0])));
    case "failed":
      return withQueue(connection, (queue) => failed(queue, rest[0] === "retry"));
    case "drain":
      return drain(connection, ...rest);
    case "workers":
      return withQueue(connection, async (queue) => console.log(JSON.stringify(await queue.workers())));
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main()
  .then((code) => process.exit(code))
  .catch((error) => {
    console.error(error);
    process.exit(2);
  });
