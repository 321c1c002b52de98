-- deferred: run what a join decided for one of its callbacks (_workflow.lua), in the callback's queue's
-- slot: 'release' puts it into its queue; 'cancel' ends it cancelled and 'fail' ends it dead (error
-- ParentFailed), without running it, handing its own end off to the joins it belongs to. A callback that
-- is no longer deferred (released already, or cancelled meanwhile) is left as it is.
-- KEYS[1] job hash   KEYS[2] the stream of its priority   KEYS[3] levels set   KEYS[4] dead zset
-- KEYS[5] done list   KEYS[6] the queue's hand-off hash
-- ARGV[1] action   ARGV[2] job id   ARGV[3] priority   ARGV[4] flow   ARGV[5] reason   ARGV[6] now (ms)
-- ARGV[7] events channel ('' = none)   ARGV[8] ttl of its record once ended (ms)
-- Returns: its status after the call (false: no record), through resq_handed.
local id, now, channel = ARGV[2], tonumber(ARGV[6]), ARGV[7]
local f = redis.call('HMGET', KEYS[1], 'status', 'task', 'history', 'waiting', 'joins', 'queue')
if f[1] ~= 'deferred' then return f[1] end
if ARGV[1] == 'release' then
  local entry = resq_add_entry(KEYS[2], id, ARGV[4])
  if ARGV[3] ~= '0' and redis.call('SADD', KEYS[3], ARGV[3]) == 1 then
    redis.pcall('XGROUP', 'CREATE', KEYS[2], RESQ_GROUP, '0')
  end
  local e = resq_event('enqueued', id, f[2], f[6], 0, now, {released = 1})
  redis.call('HSET', KEYS[1], 'status', 'queued', 'entry', entry, 'enqueued_ms', now, 'history', resq_note(f[3], channel, e))
  return 'queued'
end
local status = ARGV[1] == 'cancel' and 'cancelled' or 'dead'
local e = resq_event(status, id, f[2], f[6], 0, now, {reason = ARGV[5]})
local history = resq_note(f[3], channel, e)
if status == 'cancelled' then
  redis.call('HSET', KEYS[1], 'status', status, 'finished_ms', now, 'cancel_reason', ARGV[5], 'history', history)
else
  local err = cmsgpack.pack({type = 'ParentFailed', message = ARGV[5], traceback = ''})
  redis.call('HSET', KEYS[1], 'status', status, 'error', err, 'finished_ms', now, 'history', history)
  redis.call('ZADD', KEYS[4], now, id)
end
resq_finish(KEYS[1], KEYS[5], tonumber(ARGV[8]), f[4])
resq_hand_off(KEYS[6], f[5], id, status, nil, now)
return resq_handed(status)
