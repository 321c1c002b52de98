// The BullMQ worker of the peer benchmark: `node worker.js CONCURRENCY`.
// Job body (as for every system): one pipelined round trip, HSET bench:start <i> <time> + INCR bench:done,
// through its own ioredis client. Completed jobs: the last 1,000 kept (removeOnComplete), as in the issue.
'use strict';

const IORedis = require('ioredis');
const { Worker } = require('bullmq');
const { URL, QUEUE, now } = require('./common');

const concurrency = Number(process.argv[2] || '1');
const client = new IORedis(URL);
const connection = new IORedis(URL, { maxRetriesPerRequest: null });

async function record(job) {
  const started = now();
  await client.pipeline().hset('bench:start', job.data.i, String(started)).incr('bench:done').exec();
}

const worker = new Worker(QUEUE, record, { connection, concurrency, removeOnComplete: { count: 1000 } });
worker.on('error', (err) => console.error(err));

async function stop() {
  await worker.close();
  await client.quit();
  await connection.quit();
  process.exit(0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`bullmq worker, concurrency ${concurrency}`);
