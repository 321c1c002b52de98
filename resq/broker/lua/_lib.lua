-- Shared helpers, prepended to every script by resq/broker/connection.py (after the line that defines
-- RESQ_TERMINAL, the set of terminal statuses, from resq.job.TERMINAL_STATUSES).
--
-- A job's history is the msgpack array in its hash's `history` field, one entry per attempt and per
-- other transition (the last 100): an entry that ends an attempt carries the attempt's `started_ms` and
-- `worker`, and readers expand it into the events it stands for (resq/broker/jobs.py). A plain enqueue
-- writes no entry (its time is `enqueued_ms`). Events are published only when someone listens: callers
-- pass the channel, or '' when nobody is subscribed.

local RESQ_HISTORY_MAX = 100

-- A lifecycle event: who, what, when, plus event-specific fields.
local function resq_event(event, job_id, task, queue, attempt, now_ms, extra)
  local e = {event = event, job_id = job_id, task = task or '', queue = queue or '',
             attempt = tonumber(attempt or 0) or 0, at_ms = tonumber(now_ms)}
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

-- Add the start of the attempt that an entry ends (`started_ms` and `worker` fields as read, or false).
local function resq_with_start(extra, started_ms, worker)
  extra.started_ms = tonumber(started_ms)
  extra.worker = worker or nil
  return extra
end

-- Publish an event for live followers (`resq events`), when the channel is not ''.
local function resq_publish(channel, e)
  if channel ~= '' then redis.call('PUBLISH', channel, cmsgpack.pack(e)) end
end

-- Publish an event built only when someone listens (`make` returns it): the hot paths' way.
local function resq_publish_lazy(channel, make)
  if channel ~= '' then resq_publish(channel, make()) end
end

-- The history field's new value: `packed` (false when none) with the entry `e` appended, capped.
local function resq_history(packed, e)
  local list = {}
  if packed then
    local ok, value = pcall(cmsgpack.unpack, packed)
    if ok and type(value) == 'table' then list = value end
  end
  list[#list + 1] = e
  while #list > RESQ_HISTORY_MAX do table.remove(list, 1) end
  return cmsgpack.pack(list)
end

-- Record an event: publish it and return the history field's new value (for the caller's HSET).
local function resq_note(packed, channel, e)
  resq_publish(channel, e)
  return resq_history(packed, e)
end

-- Record a final state: expire the job's hash; wake result() waiters through the done list, if any
-- waits (`waiting` is the hash's flag, set by the wait script).
local function resq_finish(job_key, done_key, ttl_ms, waiting)
  redis.call('PEXPIRE', job_key, ttl_ms)
  if waiting then
    redis.call('RPUSH', done_key, '1')
    redis.call('PEXPIRE', done_key, ttl_ms)
  end
end

-- Put a job in the dead set; returns the set's size. Trimming it (by age and to dead_max_jobs) is its
-- caller's (Queues.trim_dead: two steps, so that every key the trim deletes is declared in KEYS).
local function resq_add_dead(dead_key, job_key, done_key, job_id, now_ms, dead_ttl_ms, waiting)
  redis.call('ZADD', dead_key, now_ms, job_id)
  resq_finish(job_key, done_key, dead_ttl_ms, waiting)
  return redis.call('ZCARD', dead_key)
end

-- The envelope a stream entry carries (a job enqueued by `enqueue` carries it there while it waits), or
-- false.
local function resq_entry_envelope(stream_key, entry)
  local found = redis.call('XRANGE', stream_key, entry, entry)
  if #found == 0 then return false end
  local fields = found[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'envelope' then return fields[i + 1] end
  end
  return false
end

-- Copy the envelope of a job's stream entry into its hash, unless the hash holds one (or is gone): done
-- before the entry leaves the stream, so the job's record keeps its arguments.
local function resq_keep_envelope(job_key, stream_key, entry)
  local f = redis.call('HMGET', job_key, 'status', 'envelope')
  if not f[1] or f[2] then return end
  local envelope = resq_entry_envelope(stream_key, entry)
  if envelope then redis.call('HSET', job_key, 'envelope', envelope) end
end

-- Take an entry out of the stream and its consumer group's pending list. Returns 1 if it was pending.
-- `envelope` is the one the caller got with the entry ('' if none): when it has none, the entry's own
-- is copied into the job hash `job_key` first, so the job's record keeps its arguments (false: copy
-- nothing, the entry is stale).
local function resq_ack(stream_key, group, entry, job_key, envelope)
  if entry == nil or entry == '' then return 0 end
  local acked = redis.call('XACK', stream_key, group, entry)
  if acked == 1 and envelope == '' then resq_keep_envelope(job_key, stream_key, entry) end
  redis.call('XDEL', stream_key, entry)
  return acked
end

-- Store in the job hash the envelope a worker got with the job's stream entry ('' if none: then the hash
-- holds it already, or resq_ack copied it).
local function resq_set_envelope(job_key, envelope)
  if envelope ~= '' then redis.call('HSET', job_key, 'envelope', envelope) end
end

-- Whether a worker's outcome for the stream entry `leased` may be recorded: the job (its hash's `status`
-- and `entry`) still runs under that very entry. A job given back by a reaper runs under a new entry, so
-- the late outcome of a worker that was declared lost (paused, cut off) is refused: the entry id is the
-- lease's fencing token. A job still `queued` under the very entry is held too: Redis came back from a
-- snapshot taken between the worker's fetch and its start, and the worker ran it.
local function resq_holds(status, entry, leased)
  return entry == leased and (status == 'running' or status == 'queued')
end

-- Refuse a stale lease (see resq_holds): take the worker's entry out of the stream and say so. `status`
-- and `entry` are the job hash's fields as read (a hash that is gone is not stale: there is nothing to
-- protect). Returns true when the caller must record nothing.
local function resq_stale(stream_key, group, leased, job_key, status, entry)
  if not status or leased == '' or resq_holds(status, entry, leased) then return false end
  resq_ack(stream_key, group, leased, job_key, false)
  return true
end

-- The "type: message" text of an encoded error record (for history and events; the full record,
-- traceback included, stays in the job hash).
local function resq_error_text(packed)
  if packed == nil or packed == '' then return '' end
  local ok, err = pcall(cmsgpack.unpack, packed)
  if not ok or type(err) ~= 'table' then return '' end
  return tostring(err['type'] or '?') .. ': ' .. tostring(err['message'] or '')
end

-- The error a script returns, before it writes anything, when a key holds another type than resq keeps
-- there (something else wrote to it). It names the key: the worker sets it aside and goes on.
local function resq_broken(key, kind, found)
  return redis.error_reply('WRONGTYPE resq key ' .. key .. ' holds a ' .. found .. ', not a ' .. kind)
end

-- Check keys before the first write: `...` is key, kind, key, kind, ... (a key of false is skipped).
-- Returns the error reply for the first key that exists with another type, or nil.
local function resq_guard(...)
  local list = {...}
  for i = 1, #list, 2 do
    if list[i] then
      local found = redis.call('TYPE', list[i]).ok
      if found ~= 'none' and found ~= list[i + 1] then return resq_broken(list[i], list[i + 1], found) end
    end
  end
  return nil
end

-- HMGET of a job hash; nil and the error reply naming the key when it holds another type.
local function resq_fields(job_key, ...)
  local f = redis.pcall('HMGET', job_key, ...)
  if f.err then return nil, resq_broken(job_key, 'hash', redis.call('TYPE', job_key).ok) end
  return f
end

-- Concurrency limits (resq/flow.py). A job with a concurrency key holds a slot, its id in the key's
-- `slots` zset, from its start until its attempt's outcome is recorded or its lease is given back; a job
-- that finds every slot taken waits in the key's `parked` list (its entry fields: id and flow), out of
-- the queue, so the jobs behind it go on. Each slot freed moves the first parked job to the queue's
-- front stream: a turn is passed on, never lost, since the slot's end and the move are one script.

-- Pass a turn: when `slots_key` has room under `limit`, the first parked job goes to the front stream.
local function resq_pass_turn(slots_key, parked_key, front_key, limit)
  if redis.call('ZCARD', slots_key) >= limit then return end
  local parked = redis.call('LPOP', parked_key)
  if not parked then return end
  local ok, fields = pcall(cmsgpack.unpack, parked)
  if ok and type(fields) == 'table' then redis.call('XADD', front_key, '*', unpack(fields)) end
end

-- Free the slot of `job_id` (if it holds one) and pass the turn on: called by every script that ends an
-- attempt or gives a lease back, with the three keys the worker appends after the script's own (`k` is
-- the index of the first; none when the job has no concurrency key) and the limit in ARGV[`a`].
local function resq_free_slot(k, a, job_id)
  if not KEYS[k] then return end
  redis.call('ZREM', KEYS[k], job_id)
  resq_pass_turn(KEYS[k], KEYS[k + 1], KEYS[k + 2], tonumber(ARGV[a]))
end

-- A new job's hash fields: `fields`, then its flow fields and `extra` (a job with no priority, no flow and
-- no extra keeps the hash as small as before).
local function resq_job_fields(fields, priority, flow, extra)
  if priority ~= '0' then
    fields[#fields + 1] = 'priority'
    fields[#fields + 1] = priority
  end
  if flow ~= '' then
    fields[#fields + 1] = 'flow'
    fields[#fields + 1] = flow
  end
  if extra then
    for _, v in ipairs(extra) do fields[#fields + 1] = v end
  end
  return fields
end

-- Creating a job: the step the `enqueue` script takes for each job of its call, and `unique` for a call
-- that is no duplicate (one code for both). A job due later is `scheduled` (its envelope in the hash, its
-- id in the scheduled zset); a job due now is `queued`: its envelope waits in the stream entry (which the
-- worker's read returns), keeping the hash small enough for Redis's compact encoding; it moves into the
-- hash when the entry leaves (resq_ack). Its flow fields (resq/flow.py) go into the hash, and a stream
-- entry carries `flow`; a priority above 0 joins the queue's levels set (its stream's group made when new).
-- `levels_key`, `scheduled_key` the queue's; `job_key`, `done_key`, `stream` (of its priority) the job's;
-- `now` (ms), `queue`, `channel` (events, '' = nobody listens), `group` the call's; `id`, `envelope`,
-- `due` (ms, a number), `task`, `priority` ('0' to '9'), `flow` ('' = none) the job's; `nx`: create only
-- if no record of the id exists at all; `extra`: more hash fields (a list field, value, ...; or nil).
-- Returns {status, created}: created is 0 when a live job with this id already exists (idempotent ids),
-- or with `nx` when any record of it exists (its status, or 'exists' for a record without one).
local function resq_create_job(levels_key, scheduled_key, job_key, done_key, stream, now, queue, channel, group,
                               id, envelope, due, task, priority, flow, nx, extra)
  local status = redis.call('HGET', job_key, 'status')
  if nx and (status or redis.call('EXISTS', job_key) == 1) then return {status or 'exists', 0} end
  if status and not RESQ_TERMINAL[status] then return {status, 0} end
  if status then redis.call('DEL', job_key, done_key) end  -- a finished job's id, reused
  if due > now then
    redis.call('ZADD', scheduled_key, due, id)
    local e = resq_event('scheduled', id, task, queue, 0, now, {due_ms = due})
    redis.call('HSET', job_key, unpack(resq_job_fields({'envelope', envelope, 'task', task, 'queue', queue,
      'attempt', 0, 'enqueued_ms', now, 'status', 'scheduled', 'due_ms', due,
      'history', resq_note(false, channel, e)}, priority, flow, extra)))
    return {'scheduled', 1}
  end
  local entry
  if flow == '' then
    entry = redis.call('XADD', stream, '*', 'id', id, 'envelope', envelope)
  else
    entry = redis.call('XADD', stream, '*', 'id', id, 'envelope', envelope, 'flow', flow)
  end
  if priority ~= '0' and redis.call('SADD', levels_key, priority) == 1 then
    redis.pcall('XGROUP', 'CREATE', stream, group, '0')  -- workers read the new level from now on
  end
  redis.call('HSET', job_key, unpack(resq_job_fields({'task', task, 'queue', queue, 'attempt', 0,
    'enqueued_ms', now, 'status', 'queued', 'entry', entry}, priority, flow, extra)))
  resq_publish_lazy(channel, function() return resq_event('enqueued', id, task, queue, 0, now, nil) end)
  return {'queued', 1}
end

-- Queue job `id` in `stream` (a new entry of its id, with its flow control when it has any: resq/flow.py),
-- for a job whose envelope is in its hash; returns the entry's id.
local function resq_add_entry(stream, id, flow)
  if flow and flow ~= '' then return redis.call('XADD', stream, '*', 'id', id, 'flow', flow) end
  return redis.call('XADD', stream, '*', 'id', id)
end
