-- cancelled: a worker records that it stopped (or skipped) a job whose cancellation was asked for.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] done list   KEYS[4] cancel set   KEYS[5] hand-off hash
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] job id   ARGV[4] now (ms)   ARGV[5] ttl (ms)
-- ARGV[6] reason   ARGV[7] events channel ('' = none)   ARGV[8] the envelope the stream entry carried ('' if none)
-- For a job with a concurrency key: KEYS[6] its slots zset   KEYS[7] its parked list   KEYS[8] the front
-- stream   ARGV[9] its limit (the slot is freed and the turn passed on: _lib.lua)
-- Returns: 1, 0 when the job hash is gone, or -1 when the lease is stale (the job was given back since:
-- nothing is recorded).
-- A job that belongs to joins hands its end off in the same step: the reply comes through resq_handed
-- (_workflow.lua).
local f, broken = resq_fields(KEYS[2], 'status', 'task', 'queue', 'attempt', 'started_ms', 'worker', 'history',
  'waiting', 'entry', 'joins')
if not f then return broken end
broken = resq_guard(KEYS[4], 'set', f[8] and KEYS[3], 'list')
if broken then return broken end
if resq_stale(KEYS[1], ARGV[1], ARGV[2], KEYS[2], f[1], f[9]) then return -1 end
resq_ack(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[8])
resq_free_slot(6, 9, ARGV[3])
redis.call('SREM', KEYS[4], ARGV[3])
if not f[1] then return 0 end
resq_set_envelope(KEYS[2], ARGV[8])
local e = resq_event('cancelled', ARGV[3], f[2], f[3], f[4], ARGV[4], resq_with_start({reason = ARGV[6]}, f[5], f[6]))
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[4], 'cancel_reason', ARGV[6],
  'history', resq_note(f[7], ARGV[7], e))
resq_finish(KEYS[2], KEYS[3], tonumber(ARGV[5]), f[8])
resq_hand_off(KEYS[5], f[10], ARGV[3], 'cancelled', nil, ARGV[4])
return resq_handed(1)
