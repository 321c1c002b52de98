// node-resque's Worker and Scheduler for resq's interop tests (tests/interop/test_node_resque.py).
//
//   node resque.js work <port> <namespace> <queues,comma> <expect> <timeout s> <job classes,comma>
//
// Runs a node-resque Worker on the queues and a Scheduler (which moves delayed jobs due now into their
// queues), until <expect> jobs ran (exit 0) or the timeout passed (exit 1). Every job class named records
// its run in the list `interop:ran` (JSON {class, args}), so the test sees what node-resque ran.
"use strict";

const { Worker, Scheduler } = require("node-resque");
const IORedis = require("ioredis");

async function main() {
  const [, , mode, port, namespace, queues, expect, timeoutS, classes] = process.argv;
  if (mode !== "work") throw new Error(`unknown mode ${mode}`);
  const connection = { pkg: "ioredis", host: "127.0.0.1", port: Number(port), namespace };
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
  process.exit(ran >= Number(expect) ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
