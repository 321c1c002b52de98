-- release: give a leased job back to the front of its queue (worker stopping, or its worker died).
-- KEYS[1] the stream the lease is in   KEYS[2] job hash   KEYS[3] dead zset   KEYS[4] done list
-- KEYS[5] the queue's front stream (served before the queue's own: the job goes before the backlog)
-- KEYS[6] cancel set   KEYS[7] hand-off hash
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] job id   ARGV[4] now (ms)
-- ARGV[5] 'lost' (worker died: counts towards max) or 'returned' (handed back politely)
-- ARGV[6] max losses before the job is dead   ARGV[7] error (msgpack) used when it goes dead
-- ARGV[8] dead ttl (ms)   ARGV[9] events channel ('' = none)   ARGV[10] the envelope the stream entry carried ('' if none)
-- ARGV[11] ttl of a cancelled record (ms)   ARGV[12] the entry's flow (resq/flow.py; '' = none), carried
-- into the new entry
-- For a job with a concurrency key: KEYS[8] its slots zset   KEYS[9] its parked list   KEYS[10] the front
-- stream   ARGV[13] its limit (the slot is freed and the turn passed on: _lib.lua)
-- Returns: 'queued', 'dead', 'cancelled' (its cancellation was asked for: it ends instead of going back),
-- or 'gone' (the entry was no longer pending: its outcome was recorded elsewhere). A job that goes dead
-- joins the dead set, which its caller trims (Queues.trim_dead).
-- A job that belongs to joins hands its end off in the same step: the reply comes through resq_handed
-- (_workflow.lua).
local f, broken = resq_fields(KEYS[2], 'status', 'task', 'queue', 'attempt', 'started_ms', 'worker', 'history',
  'waiting', 'lost', 'cancel_requested', 'joins')
if not f then return broken end
broken = resq_guard(KEYS[5], 'stream', KEYS[3], 'zset', f[8] and KEYS[4], 'list', f[10] and KEYS[6], 'set')
if broken then return broken end
if resq_ack(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[10]) == 0 then return 'gone' end
resq_free_slot(8, 13, ARGV[3])
local status = f[1]
if not status or RESQ_TERMINAL[status] then return 'gone' end
local running = status == 'running'
if f[10] then  -- asked to cancel while it ran: it ends cancelled rather than run again
  resq_set_envelope(KEYS[2], ARGV[10])
  redis.call('SREM', KEYS[6], ARGV[3])
  local reason = 'cancelled while running (its worker stopped)'
  local e = resq_event('cancelled', ARGV[3], f[2], f[3], f[4], ARGV[4], resq_with_start({reason = reason}, f[5], f[6]))
  redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[4], 'cancel_reason', reason,
    'history', resq_note(f[7], ARGV[9], e))
  resq_finish(KEYS[2], KEYS[4], tonumber(ARGV[11]), f[8])
  resq_hand_off(KEYS[7], f[11], ARGV[3], 'cancelled', nil, ARGV[4])
  return resq_handed('cancelled')
end
if ARGV[5] == 'lost' and running then
  local lost = (tonumber(f[9]) or 0) + 1
  if lost >= tonumber(ARGV[6]) then
    resq_set_envelope(KEYS[2], ARGV[10])
    local e = resq_event('dead', ARGV[3], f[2], f[3], f[4], ARGV[4],
      resq_with_start({error = resq_error_text(ARGV[7]), from = 'lost'}, f[5], f[6]))
    redis.call('HSET', KEYS[2], 'status', 'dead', 'error', ARGV[7], 'finished_ms', ARGV[4], 'lost', lost,
      'history', resq_note(f[7], ARGV[9], e))
    resq_add_dead(KEYS[3], KEYS[2], KEYS[4], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[8]), f[8])
    resq_hand_off(KEYS[7], f[11], ARGV[3], 'dead', nil, ARGV[4])
    return resq_handed('dead')
  end
  redis.call('HSET', KEYS[2], 'lost', lost)
end
local attempt = tonumber(f[4]) or 0
if ARGV[5] == 'returned' and running then
  attempt = attempt - 1
  redis.call('HSET', KEYS[2], 'attempt', attempt)
end
local fields = {'id', ARGV[3]}  -- the envelope goes on waiting in the new entry, if it waited in the old one
if ARGV[10] ~= '' then fields = {'id', ARGV[3], 'envelope', ARGV[10]} end
if ARGV[12] and ARGV[12] ~= '' then
  fields[#fields + 1] = 'flow'
  fields[#fields + 1] = ARGV[12]
end
local entry = redis.call('XADD', KEYS[5], '*', unpack(fields))
if entry == ARGV[2] then  -- the two streams draw their ids apart: the lease's token must not come back
  redis.call('XDEL', KEYS[5], entry)
  entry = redis.call('XADD', KEYS[5], '*', unpack(fields))
end
local extra = {from = ARGV[5]}
if running then resq_with_start(extra, f[5], f[6]) end
local e = resq_event('enqueued', ARGV[3], f[2], f[3], attempt, ARGV[4], extra)
redis.call('HSET', KEYS[2], 'status', 'queued', 'entry', entry, 'history', resq_note(f[7], ARGV[9], e))
return 'queued'
