-- run_now: move one scheduled (or retrying) job into its queue now, whatever its due time.
-- KEYS[1] scheduled zset   KEYS[2] queue stream   KEYS[3] job hash
-- ARGV[1] job id   ARGV[2] now (ms)   ARGV[3] events channel ('' = none)
-- Returns: {1, 'queued'} when moved; else {0, the job's status (false when unknown)}, untouched.
local f = redis.call('HMGET', KEYS[3], 'status', 'task', 'queue', 'attempt', 'history', 'flow')
local status = f[1]
if not status then return {0, false} end
if (status ~= 'scheduled' and status ~= 'retrying') or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return {0, status}
end
local entry = resq_add_entry(KEYS[2], ARGV[1], f[6])  -- its flow control goes with it
local e = resq_event('enqueued', ARGV[1], f[2], f[3], f[4], ARGV[2], {from = status, run_now = 1})
redis.call('HSET', KEYS[3], 'status', 'queued', 'entry', entry, 'history', resq_note(f[5], ARGV[3], e))
redis.call('HDEL', KEYS[3], 'due_ms')
return {1, 'queued'}
