-- dead: a job that will not run again goes to the capped dead set, error kept.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] dead zset   KEYS[4] done list   KEYS[5] cancel set
-- KEYS[6] hand-off hash
-- ARGV[1] group   ARGV[2] stream entry id ('' if none)   ARGV[3] error (msgpack)   ARGV[4] now (ms)
-- ARGV[5] job id   ARGV[6] dead ttl (ms)   ARGV[7] the payload to keep when the hash holds no envelope: the
-- envelope the stream entry carried, or a foreign entry's raw fields ('' if none)
-- ARGV[8] duration (ms)   ARGV[9] events channel ('' = none)
-- ARGV[10] '1' when an attempt ran and failed (a 'failed' event precedes 'dead')
-- For a job with a concurrency key: KEYS[7] its slots zset   KEYS[8] its parked list   KEYS[9] the front
-- stream   ARGV[11] its limit (the slot is freed and the turn passed on: _lib.lua)
-- A member of a join (_workflow.lua) hands its end off here, in the same step as its death.
-- Returns: the dead set's size (the caller trims it past dead_max_jobs: Queues.trim_dead), or -1 when the
-- lease is stale (the job was given back since: nothing is recorded); through resq_handed.
local f, broken = resq_fields(KEYS[2], 'status', 'task', 'queue', 'attempt', 'started_ms', 'worker', 'history',
  'waiting', 'cancel_requested', 'entry', 'joins')
if not f then return broken end
broken = resq_guard(KEYS[3], 'zset', f[8] and KEYS[4], 'list', f[9] and KEYS[5], 'set')
if broken then return broken end
if resq_stale(KEYS[1], ARGV[1], ARGV[2], KEYS[2], f[1], f[10]) then return -1 end
resq_ack(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[7])
resq_free_slot(7, 11, ARGV[5])
local err = resq_error_text(ARGV[3])
local failed = ARGV[10] == '1'
if failed then
  resq_publish(ARGV[9], resq_event('failed', ARGV[5], f[2], f[3], f[4], ARGV[4],
    {duration_ms = tonumber(ARGV[8]), error = err}))
end
local extra = resq_with_start({error = err, failed = failed and 1 or 0}, f[5], f[6])
if failed then extra.duration_ms = tonumber(ARGV[8]) end
local e = resq_event('dead', ARGV[5], f[2], f[3], f[4], ARGV[4], extra)
redis.call('HSET', KEYS[2], 'status', 'dead', 'error', ARGV[3], 'finished_ms', ARGV[4], 'duration_ms', ARGV[8],
  'history', resq_note(f[7], ARGV[9], e))
if ARGV[7] ~= '' and redis.call('HEXISTS', KEYS[2], 'envelope') == 0 then
  redis.call('HSET', KEYS[2], 'envelope', ARGV[7])
end
if f[9] then redis.call('SREM', KEYS[5], ARGV[5]) end
local size = resq_add_dead(KEYS[3], KEYS[2], KEYS[4], ARGV[5], tonumber(ARGV[4]), tonumber(ARGV[6]), f[8])
resq_hand_off(KEYS[6], f[11], ARGV[5], 'dead', nil, ARGV[4])
return resq_handed(size)
