-- start: a worker begins an attempt of a job it fetched from the stream.
-- KEYS[1] job hash   KEYS[2] the stream of the entry
-- and for a job with flow control (resq/flow.py: a concurrency or rate limit, or an expiry):
-- KEYS[3] scheduled zset   KEYS[4] the queue's front stream   KEYS[5] done list
-- KEYS[6] concurrency slots zset   KEYS[7] parked list   KEYS[8] rate starts zset   KEYS[9] rate next string
-- KEYS[10] hand-off hash
-- ARGV[1] worker id   ARGV[2] now (ms)   ARGV[3] stream entry id   ARGV[4] job id
-- ARGV[5] events channel ('' = nobody listens)
-- and for a job with flow control: ARGV[6] group   ARGV[7] concurrency limit (0: none)
-- ARGV[8] starts allowed per rate window (0: no rate limit)   ARGV[9] the rate window (ms)
-- ARGV[10] expires at (ms, 0: never)   ARGV[11] ttl of an expired record (ms)   ARGV[12] the entry's flow
-- ARGV[13] wake-up channel
-- Returns: {envelope, attempt, status} on start; {false, 0, status} when the job must not run
-- (cancelled, or finished by an earlier delivery); {false, 0, false, orphan} when the hash is gone:
-- `orphan` is 1 when the entry still waits in the stream (its job's record was deleted under it: a
-- worker sets it aside as dead), 0 when the entry went too (the queue was cleared); {false, 0, false, 0}
-- too when the entry is not the job's current one (a stale duplicate: the job was given back under a new
-- entry, e.g. by a worker that found Redis restored from an older snapshot, while this one was leased).
-- A job held back by its flow control: {false, 0, status, 0, held} with held 'expired' (not started in
-- time: it ends `expired`), 'parked' (every slot of its concurrency key is taken: it waits in the parked
-- list, still `queued`) or 'throttled' (its rate window is full: `scheduled` at the next free start, no
-- attempt counted); its entry leaves the stream, and its envelope moves into its hash.
-- Writes no history entry for a start: the entry that ends the attempt carries it (see _lib.lua).
-- A job that belongs to joins hands its end off in the same step: the reply comes through resq_handed
-- (_workflow.lua).
local gated = KEYS[3] ~= nil
local f, broken = resq_fields(KEYS[1], 'status', 'envelope', 'attempt', 'task', 'queue', 'entry', 'history',
  'waiting', 'joins')
if not f then return broken end
local status = f[1]
local function refused(reply)
  if gated and tonumber(ARGV[7]) > 0 then resq_pass_turn(KEYS[6], KEYS[7], KEYS[4], tonumber(ARGV[7])) end
  return reply
end
if not status then return refused({false, 0, false, #redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])}) end
if RESQ_TERMINAL[status] then return refused({false, 0, status}) end
if f[6] and f[6] ~= ARGV[3] then return refused({false, 0, false, 0}) end

-- Hold the job back: its entry leaves the stream (its envelope kept in the hash).
local function hold(new_status, held, fields)
  resq_ack(KEYS[2], ARGV[6], ARGV[3], KEYS[1], '')
  redis.call('HDEL', KEYS[1], 'entry')
  redis.call('HSET', KEYS[1], 'status', new_status, unpack(fields))
  return {false, 0, new_status, 0, held}
end

if gated then
  local now, limit, rate = tonumber(ARGV[2]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local expires = tonumber(ARGV[10])
  if expires > 0 and now >= expires then
    local e = resq_event('expired', ARGV[4], f[4], f[5], f[3], now, {expires_ms = expires})
    local reply = hold('expired', 'expired', {'finished_ms', now, 'history', resq_note(f[7], ARGV[5], e)})
    resq_finish(KEYS[1], KEYS[5], tonumber(ARGV[11]), f[8])
    resq_hand_off(KEYS[10], f[9], ARGV[4], 'expired', nil, now)
    return resq_handed(refused(reply))
  end
  local takes_slot = limit > 0 and not redis.call('ZSCORE', KEYS[6], ARGV[4])
  if takes_slot and redis.call('ZCARD', KEYS[6]) >= limit then
    redis.call('RPUSH', KEYS[7], cmsgpack.pack({'id', ARGV[4], 'flow', ARGV[12]}))
    resq_publish_lazy(ARGV[5], function()
      return resq_event('parked', ARGV[4], f[4], f[5], f[3], now, {limit = limit})
    end)
    return hold('queued', 'parked', {})
  end
  if rate > 0 then
    local t = redis.call('TIME')  -- Redis's clock: the window holds across machines whose clocks differ
    local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local window = tonumber(ARGV[9])
    redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', clock - window)
    if redis.call('ZCARD', KEYS[8]) >= rate then
      -- The window is full until its rate-th newest start leaves it; the jobs held back are spread a
      -- window's share apart from then, so they do not all wake at once.
      local opens = tonumber(redis.call('ZRANGE', KEYS[8], -rate, -rate, 'WITHSCORES')[2]) + window
      local due = math.max(opens, tonumber(redis.call('GET', KEYS[9]) or 0))
      redis.call('SET', KEYS[9], due + math.ceil(window / rate), 'PX', window * 2)
      redis.call('ZADD', KEYS[3], due, ARGV[4])
      redis.call('PUBLISH', ARGV[13], due)
      local e = resq_event('throttled', ARGV[4], f[4], f[5], f[3], now, {due_ms = due})
      return hold('scheduled', 'throttled', {'due_ms', due, 'history', resq_note(f[7], ARGV[5], e)})
    end
    redis.call('ZADD', KEYS[8], clock, ARGV[4] .. '@' .. ARGV[3])
    redis.call('PEXPIRE', KEYS[8], window * 2)
  end
  if takes_slot then redis.call('ZADD', KEYS[6], now, ARGV[4]) end
end

local attempt = (tonumber(f[3]) or 0) + 1
if attempt == 1 then
  redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', attempt, 'started_ms', ARGV[2], 'worker', ARGV[1],
    'entry', ARGV[3], 'first_started_ms', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', attempt, 'started_ms', ARGV[2], 'worker', ARGV[1],
    'entry', ARGV[3])
end
resq_publish_lazy(ARGV[5], function()
  return resq_event('started', ARGV[4], f[4], f[5], attempt, ARGV[2], {worker = ARGV[1]})
end)
return {f[2], attempt, status}
