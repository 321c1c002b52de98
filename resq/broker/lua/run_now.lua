-- run_now: move one scheduled (or retrying) job into its queue now, whatever its due time.
-- KEYS[1] scheduled zset   KEYS[2] queue stream   KEYS[3] job hash   KEYS[4] history list
-- ARGV[1] job id   ARGV[2] now (ms)   ARGV[3] events channel
-- Returns: {1, 'queued'} when moved; else {0, the job's status (false when unknown)}, untouched.
local status = redis.call('HGET', KEYS[3], 'status')
if not status then return {0, false} end
if (status ~= 'scheduled' and status ~= 'retrying') or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return {0, status}
end
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[3], 'status', 'queued', 'entry', entry)
redis.call('HDEL', KEYS[3], 'due_ms')
resq_note(KEYS[3], KEYS[4], ARGV[3], 'enqueued', ARGV[1], ARGV[2], {from = status, run_now = 1})
return {1, 'queued'}
