// Shared by worker.js and producer.js: the Redis URL, the queue's name and the clock.
'use strict';

const { performance } = require('node:perf_hooks');

const URL = process.env.BENCH_REDIS_URL;
const QUEUE = 'bench';

/** Seconds since the epoch, sub-millisecond (as Python's time.time()). */
function now() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

module.exports = { URL, QUEUE, now };
