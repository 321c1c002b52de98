-- retry: a failed attempt goes to the scheduled set, due after its backoff (or, when its cancellation was
-- asked for while it ran, the job ends cancelled instead of running again).
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] scheduled zset   KEYS[4] cancel set   KEYS[5] done list
-- KEYS[6] hand-off hash
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] error (msgpack)   ARGV[4] now (ms)
-- ARGV[5] due (ms)   ARGV[6] job id   ARGV[7] duration (ms)   ARGV[8] events channel ('' = none)
-- ARGV[9] the envelope the stream entry carried ('' if none)   ARGV[10] ttl of a cancelled record (ms)
-- ARGV[11] '1' when the attempt counts (it failed), '0' when the task asked to run later (Snooze,
-- RateLimited): then the job is `scheduled` again with its attempt given back and no error
-- For a job with a concurrency key: KEYS[7] its slots zset   KEYS[8] its parked list   KEYS[9] the front
-- stream   ARGV[12] its limit (the slot is freed and the turn passed on: _lib.lua)
-- Returns: 1, 2 when it ended cancelled, 0 when the job hash is gone, or -1 when the lease is stale (the
-- job was given back since: nothing is recorded).
-- A job that belongs to joins hands its end off in the same step: the reply comes through resq_handed
-- (_workflow.lua).
local f, broken = resq_fields(KEYS[2], 'status', 'task', 'queue', 'attempt', 'started_ms', 'worker', 'history',
  'cancel_requested', 'entry', 'waiting', 'joins')
if not f then return broken end
broken = resq_guard(KEYS[3], 'zset', f[8] and KEYS[4], 'set', f[10] and KEYS[5], 'list')
if broken then return broken end
if resq_stale(KEYS[1], ARGV[1], ARGV[2], KEYS[2], f[1], f[9]) then return -1 end
resq_ack(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[9])
resq_free_slot(7, 12, ARGV[6])
if not f[1] then return 0 end
resq_set_envelope(KEYS[2], ARGV[9])
local err = resq_error_text(ARGV[3])
if f[8] then  -- asked to cancel while it ran: the failed attempt is its last
  redis.call('SREM', KEYS[4], ARGV[6])
  local reason = 'cancelled while running (its attempt failed: ' .. err .. ')'
  local e = resq_event('cancelled', ARGV[6], f[2], f[3], f[4], ARGV[4], resq_with_start({reason = reason}, f[5], f[6]))
  redis.call('HSET', KEYS[2], 'status', 'cancelled', 'error', ARGV[3], 'finished_ms', ARGV[4], 'duration_ms',
    ARGV[7], 'cancel_reason', reason, 'history', resq_note(f[7], ARGV[8], e))
  resq_finish(KEYS[2], KEYS[5], tonumber(ARGV[10]), f[10])
  resq_hand_off(KEYS[6], f[11], ARGV[6], 'cancelled', nil, ARGV[4])
  return resq_handed(2)
end
local duration = tonumber(ARGV[7])
if ARGV[11] == '0' then  -- snoozed: back to the scheduled set, the attempt not counted
  local attempt = math.max(0, (tonumber(f[4]) or 1) - 1)
  local e = resq_event('snoozed', ARGV[6], f[2], f[3], f[4], ARGV[4],
    resq_with_start({due_ms = tonumber(ARGV[5]), reason = err, duration_ms = duration}, f[5], f[6]))
  redis.call('HSET', KEYS[2], 'status', 'scheduled', 'attempt', attempt, 'due_ms', ARGV[5], 'duration_ms',
    ARGV[7], 'history', resq_note(f[7], ARGV[8], e))
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
  return 1
end
resq_publish(ARGV[8], resq_event('failed', ARGV[6], f[2], f[3], f[4], ARGV[4], {duration_ms = duration, error = err}))
local e = resq_event('retrying', ARGV[6], f[2], f[3], f[4], ARGV[4],
  resq_with_start({due_ms = tonumber(ARGV[5]), error = err, duration_ms = duration}, f[5], f[6]))
redis.call('HSET', KEYS[2], 'status', 'retrying', 'error', ARGV[3], 'due_ms', ARGV[5], 'failed_ms', ARGV[4],
  'duration_ms', ARGV[7], 'history', resq_note(f[7], ARGV[8], e))
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
return 1
