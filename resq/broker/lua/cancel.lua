-- cancel: remove a queued, scheduled or deferred job; ask the worker to stop a running one.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] scheduled zset   KEYS[4] done list   KEYS[5] cancel set
-- KEYS[6] the queue's front stream (a job given back waits there)   KEYS[7] hand-off hash
-- ARGV[1] group   ARGV[2] job id   ARGV[3] now (ms)   ARGV[4] ttl of the cancelled record (ms)
-- ARGV[5] events channel ('' = none)
-- Returns: the status after the call ('cancelled', 'running' when a stop was requested, or the final
-- status the job already had), or false when the job is unknown.
-- A job that belongs to joins hands its end off in the same step: the reply comes through resq_handed
-- (_workflow.lua).
local f = redis.call('HMGET', KEYS[2], 'status', 'task', 'queue', 'attempt', 'entry', 'history', 'waiting', 'joins')
local status = f[1]
if not status then return false end
if RESQ_TERMINAL[status] then return status end
if status == 'running' then
  redis.call('SADD', KEYS[5], ARGV[2])
  local e = resq_event('cancel_requested', ARGV[2], f[2], f[3], f[4], ARGV[3], nil)
  redis.call('HSET', KEYS[2], 'cancel_requested', 1, 'history', resq_note(f[6], ARGV[5], e))
  return 'running'
end
if status == 'queued' and f[5] then
  for _, stream in ipairs({KEYS[6], KEYS[1]}) do  -- the stream whose entry of that id is this job's
    local found = redis.call('XRANGE', stream, f[5], f[5])
    if #found == 1 and found[1][2][2] == ARGV[2] then
      resq_keep_envelope(KEYS[2], stream, f[5])
      redis.call('XACK', stream, ARGV[1], f[5])  -- a worker that leased it meanwhile drops it at its start
      redis.call('XDEL', stream, f[5])
      break
    end
  end
end
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[5], ARGV[2])
local e = resq_event('cancelled', ARGV[2], f[2], f[3], f[4], ARGV[3], nil)
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[3], 'history', resq_note(f[6], ARGV[5], e))
resq_finish(KEYS[2], KEYS[4], tonumber(ARGV[4]), f[7])
resq_hand_off(KEYS[7], f[8], ARGV[2], 'cancelled', nil, ARGV[3])
return resq_handed('cancelled')
