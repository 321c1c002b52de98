-- unique: enqueue one job of a unique or debounced task (resq/broker/unique.py, docs/flow-control.md),
-- deciding in the same script whether the call is a duplicate of the job that holds the task's lock.
-- The lock is a string in the queue's hash tag naming its holder's job id. It is never released by the
-- start or outcome scripts: this script reads the holder's status and decides from it (a holder whose
-- hash is gone counts as finished):
--   'started'   a holder still `scheduled` or `queued` (not started) makes the call a duplicate
--   'finished'  a holder that is not terminal (RESQ_TERMINAL) makes the call a duplicate
--   'window'    the lock alone does, whatever its holder's status (the lock expires after the window)
--   'debounce'  a holder still `scheduled` takes the call: its envelope is replaced by the call's, its
--               due time becomes min(now + debounce, first call + debounce max), and its history's
--               last `debounced` entry counts the call; else a new job (and a new window) starts
-- Any other call creates a job exactly as `enqueue` does (resq_create_job, _lib.lua) and takes the lock.
--
-- Two phases, so that every key is declared (none is built here from ARGV or from a value read): the
-- producer first GETs the lock, then calls this script naming the holder it read (its job hash in
-- KEYS[7]). The script reads the lock again; when it no longer names that holder (another producer took
-- it in between, or it expired), nothing is written and it returns {'retry', holder now or ''}: the
-- producer calls again naming that holder, a bounded number of times.
--
-- KEYS[1] the lock (string)   KEYS[2] levels set   KEYS[3] scheduled zset
-- KEYS[4] the new job's hash   KEYS[5] its done list   KEYS[6] the stream of its priority
-- KEYS[7] the holder's job hash (absent when the producer read no holder)
-- ARGV[1] now (ms)   ARGV[2] queue name   ARGV[3] events channel ('' = nobody listens)
-- ARGV[4] 'nx' to create only if no record of the id exists at all ('' otherwise)   ARGV[5] consumer group
-- ARGV[6] job id   ARGV[7] envelope (msgpack)   ARGV[8] due (ms, 0 = now)   ARGV[9] task name
-- ARGV[10] priority (0-9)   ARGV[11] flow (resq/flow.py, '' = none)
-- ARGV[12] mode: 'started', 'finished', 'window' or 'debounce'
-- ARGV[13] the lock's TTL (ms, 0 = none); for 'debounce', how long the lock outlives its holder's due time
-- ARGV[14] the holder the producer read ('' = none)   ARGV[15] debounce (ms)   ARGV[16] debounce max (ms, 0 = none)
-- ARGV[17] the call's envelope under the holder's id ('' = none; for 'debounce': it replaces the holder's)
-- ARGV[18] the wake-up channel (a job scheduled: its due time is published there)
-- Returns {'retry', holder}, or {status, created, job id, how, due}: `how` is 'duplicate' or 'debounced'
-- (the id is the holder's, the status its status, created 0) or '' (the new job's status and created, as
-- `enqueue` replies for one job); `due` is the job's due time (ms, 0 = now).
local broken = resq_guard(KEYS[1], 'string')
if broken then return broken end
local holder = redis.call('GET', KEYS[1])
if (holder or '') ~= ARGV[14] then return {'retry', holder or ''} end

local now, mode = tonumber(ARGV[1]), ARGV[12]
local debounced = mode == 'debounce'
local due = tonumber(ARGV[8])
local base = math.max(now, due)  -- a debounced call counts its wait from when it asks to run
if debounced then due = base + tonumber(ARGV[15]) end

-- Take the lock for `id`: for its TTL (none when 0); a debounce's lock lasts until `until_due` (its
-- holder's due time) and the TTL after it.
local function hold(id, until_due)
  local ttl = tonumber(ARGV[13])
  if debounced then ttl = until_due - now + ttl end
  if ttl > 0 then
    redis.call('SET', KEYS[1], id, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], id)
  end
end

-- The holder's history with the `debounced` entry `e`: a run of debounced calls is one entry, the last
-- call's, counting them (`calls`), so a burst neither costs a long history rewrite per call nor pushes
-- the job's older entries out. The event is published for every call.
local function debounce_note(packed, e)
  local list = false
  if packed then
    local ok, value = pcall(cmsgpack.unpack, packed)
    if ok and type(value) == 'table' then list = value end
  end
  local last = list and list[#list]
  if type(last) ~= 'table' or last.event ~= 'debounced' then
    e.calls = 1
    return resq_note(packed, ARGV[3], e)
  end
  e.calls = (tonumber(last.calls) or 1) + 1
  list[#list] = e
  resq_publish(ARGV[3], e)
  return cmsgpack.pack(list)
end

local function wake(at)
  if at > now then redis.call('PUBLISH', ARGV[18], at) end
end

if holder then
  local f, err = resq_fields(KEYS[7], 'status', 'task', 'queue', 'attempt', 'history', 'debounce_first_ms')
  if not f then return err end
  local status = f[1]
  if debounced then
    if status == 'scheduled' then
      local cap = tonumber(ARGV[16])
      local first = tonumber(f[6]) or base
      if cap > 0 and due > first + cap then due = first + cap end
      local e = resq_event('debounced', holder, f[2], f[3], f[4], now, {due_ms = due, call = ARGV[6]})
      redis.call('ZADD', KEYS[3], due, holder)
      redis.call('HSET', KEYS[7], 'envelope', ARGV[17], 'due_ms', due, 'history', debounce_note(f[5], e))
      -- the call's own flow control, as a new job would have it
      for field, value in pairs({priority = ARGV[10] ~= '0' and ARGV[10], flow = ARGV[11] ~= '' and ARGV[11]}) do
        if value then redis.call('HSET', KEYS[7], field, value) else redis.call('HDEL', KEYS[7], field) end
      end
      hold(holder, due)
      wake(due)
      return {status, 0, holder, 'debounced', due}
    end
  elseif mode == 'window' or (status and ((mode == 'started' and (status == 'scheduled' or status == 'queued'))
      or (mode == 'finished' and not RESQ_TERMINAL[status]))) then
    return {status or false, 0, holder, 'duplicate', 0}
  end
end

local extra = nil
if debounced then extra = {'debounce_first_ms', base} end
local reply = resq_create_job(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], now, ARGV[2], ARGV[3], ARGV[5], ARGV[6],
  ARGV[7], due, ARGV[9], ARGV[10], ARGV[11], ARGV[4] == 'nx', extra)
if reply[2] == 1 then
  hold(ARGV[6], due)
  wake(due)
end
return {reply[1], reply[2], ARGV[6], '', due > now and due or 0}
