-- cancel: remove a queued or scheduled job; ask the worker to stop a running one.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] scheduled zset   KEYS[4] done list   KEYS[5] cancel set
-- KEYS[6] history list
-- ARGV[1] group   ARGV[2] job id   ARGV[3] now (ms)   ARGV[4] ttl of the cancelled record (ms)
-- ARGV[5] events channel
-- Returns: the status after the call ('cancelled', 'running' when a stop was requested, or the final
-- status the job already had), or false when the job is unknown.
local status = redis.call('HGET', KEYS[2], 'status')
if not status then return false end
if RESQ_TERMINAL[status] then return status end
if status == 'running' then
  redis.call('SADD', KEYS[5], ARGV[2])
  redis.call('HSET', KEYS[2], 'cancel_requested', 1)
  resq_note(KEYS[2], KEYS[6], ARGV[5], 'cancel_requested', ARGV[2], ARGV[3], nil)
  return 'running'
end
if status == 'queued' then
  local entry = redis.call('HGET', KEYS[2], 'entry')
  if entry then redis.call('XDEL', KEYS[1], entry) end
end
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[3])
redis.call('HDEL', KEYS[2], 'entry')
resq_note(KEYS[2], KEYS[6], ARGV[5], 'cancelled', ARGV[2], ARGV[3], nil)
resq_finish(KEYS[2], KEYS[4], KEYS[6], tonumber(ARGV[4]))
return 'cancelled'
