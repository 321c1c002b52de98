// The BullMQ producer of the peer benchmark: `node producer.js MODE N [LEAD [FIRST]]`, one JSON line on stdout.
// Modes (as bench/peers/producer.py): fill (N jobs numbered from FIRST, one awaited add each, timed), latency (N jobs one at a
// time, each after the previous one is done, for LEAD s at most; prints the enqueue times), delayed (N jobs due LEAD s from now).
'use strict';

const IORedis = require('ioredis');
const { Queue } = require('bullmq');
const { URL, QUEUE, now } = require('./common');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fill(queue, n, first) {
  const t0 = now();
  for (let i = first; i < first + n; i++) await queue.add('record', { i });
  return { elapsed: now() - t0, n };
}

async function latency(queue, n, budget) {
  const probe = new IORedis(URL);
  const sent = {};
  const deadline = now() + budget;
  for (let i = 0; i < n && now() < deadline; i++) {
    sent[i] = now();
    await queue.add('record', { i });
    while (!(await probe.hexists('bench:start', String(i)))) await sleep(0.5);
    await sleep(5);
  }
  await probe.quit();
  return { sent };
}

async function delayed(queue, n, lead) {
  const due = now() + lead;
  for (let i = 0; i < n; i++) await queue.add('record', { i }, { delay: Math.max(0, Math.round((due - now()) * 1000)) });
  return { due, late_enqueue: now() > due };
}

async function main() {
  const [mode, n, lead] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] || '1')];
  const first = Number(process.argv[5] || '0');
  const queue = new Queue(QUEUE, { connection: new IORedis(URL, { maxRetriesPerRequest: null }) });
  const modes = { fill: () => fill(queue, n, first), latency: () => latency(queue, n, lead), delayed: () => delayed(queue, n, lead) };
  const out = await modes[mode]();
  await queue.close();
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
