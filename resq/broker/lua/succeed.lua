-- succeed: record a job's result and take it off the queue, in one step.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] done list   KEYS[4] cancel set   KEYS[5] hand-off hash
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] result (msgpack)   ARGV[4] now (ms)
-- ARGV[5] result ttl (ms)   ARGV[6] duration (ms)   ARGV[7] job id   ARGV[8] events channel ('' = none)
-- ARGV[9] the envelope the stream entry carried ('' if none)
-- For a job with a concurrency key: KEYS[6] its slots zset   KEYS[7] its parked list   KEYS[8] the front
-- stream   ARGV[10] its limit (the slot is freed and the turn passed on: _lib.lua)
-- For a step of a chain (resq/canvas.py): ARGV[10] '0' when the job has no concurrency key, ARGV[11]
-- 'then', and the next step's job, in the same queue, created here, in the same step as this one's success
-- (never lost, never twice: its id was drawn when the chain was made): the last five KEYS its queue's levels
-- set, scheduled zset, its job hash, done list and stream; or ARGV[11] 'later' (no KEYS more) for a next
-- step in another queue, whose slot this script must not touch: the hand-off entry carries it, and its
-- caller creates it (resq/broker/handoff.py; 'nx': once). ARGV[12] its queue   ARGV[13] the consumer group
-- ARGV[14] its id   ARGV[15] envelope   ARGV[16] task   ARGV[17] priority   ARGV[18] flow   ARGV[19] its joins
-- ('' = none: the batch of the chain, which the hand-off registers it in before it counts this step)
-- A member of a join (_workflow.lua), or a step whose next step is one, hands its end off here, in the
-- same step as its success.
-- Returns: 1, 0 when the job hash is gone, or -1 when the lease is stale (the job was given back since:
-- nothing is recorded); through resq_handed.
local f, broken = resq_fields(KEYS[2], 'status', 'task', 'queue', 'attempt', 'started_ms', 'worker', 'history',
  'waiting', 'cancel_requested', 'entry', 'joins')
if not f then return broken end
broken = resq_guard(f[8] and KEYS[3], 'list', f[9] and KEYS[4], 'set')
if broken then return broken end
if resq_stale(KEYS[1], ARGV[1], ARGV[2], KEYS[2], f[1], f[10]) then return -1 end
resq_ack(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[9])
local chained = ARGV[11] == 'then'
if #KEYS - (chained and 5 or 0) >= 8 then resq_free_slot(6, 10, ARGV[7]) end
if not f[1] then return 0 end
local next_id, next_joins, step
if ARGV[11] == 'later' then  -- a next step in another queue (another slot): made by the hand-off
  next_id, next_joins = ARGV[14], ARGV[19]
  step = cmsgpack.pack({ARGV[12], ARGV[15], ARGV[16], ARGV[17], ARGV[18]})
elseif chained then
  local n = #KEYS - 4
  local made = resq_create_job(KEYS[n], KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4], tonumber(ARGV[4]),
    ARGV[12], ARGV[8], ARGV[13], ARGV[14], ARGV[15], 0, ARGV[16], ARGV[17], ARGV[18], false, nil)
  if made[2] == 1 and ARGV[19] ~= '' then
    resq_keep_joins(KEYS[n + 2], ARGV[19])
    next_id, next_joins = ARGV[14], ARGV[19]
  end
end
local fields = {'status', 'succeeded', 'result', ARGV[3], 'finished_ms', ARGV[4], 'duration_ms', ARGV[6]}
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'envelope'
  fields[#fields + 1] = ARGV[9]
end
if f[7] or ARGV[8] ~= '' then
  local e = resq_event('succeeded', ARGV[7], f[2], f[3], f[4], ARGV[4],
    resq_with_start({duration_ms = tonumber(ARGV[6])}, f[5], f[6]))
  if f[7] then
    fields[#fields + 1] = 'history'
    fields[#fields + 1] = resq_note(f[7], ARGV[8], e)
  else
    resq_publish(ARGV[8], e)
  end
end
-- A job with no history entry yet (a first attempt that succeeds) gets none: its fields say it all
-- (readers imply the entry from them, resq/broker/jobs.py).
redis.call('HSET', KEYS[2], unpack(fields))
if f[9] then redis.call('SREM', KEYS[4], ARGV[7]) end
resq_finish(KEYS[2], KEYS[3], tonumber(ARGV[5]), f[8])
resq_hand_off(KEYS[5], f[11], ARGV[7], 'succeeded', ARGV[3], ARGV[4], next_id, next_joins, step)
return resq_handed(1)
