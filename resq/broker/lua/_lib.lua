-- Shared helpers, prepended to every script by resq/broker/connection.py (after the line that defines
-- RESQ_TERMINAL, the set of terminal statuses, from resq.job.TERMINAL_STATUSES).
-- Keys built here from a prefix share the queue's hash tag, so a script still touches one slot.

-- Record a final state: expire the job's keys and wake result() waiters through the done list.
local function resq_finish(job_key, done_key, history_key, ttl_ms)
  redis.call('PEXPIRE', job_key, ttl_ms)
  redis.call('PEXPIRE', history_key, ttl_ms)
  redis.call('RPUSH', done_key, '1')
  redis.call('PEXPIRE', done_key, ttl_ms)
end

-- Put a job in the dead set, then trim the set by age and size (dropping the trimmed jobs' keys).
local function resq_add_dead(dead_key, job_key, done_key, history_key, job_id, now_ms, dead_ttl_ms, dead_max,
                         job_prefix, done_prefix, history_prefix)
  redis.call('ZADD', dead_key, now_ms, job_id)
  resq_finish(job_key, done_key, history_key, dead_ttl_ms)
  local old = redis.call('ZRANGEBYSCORE', dead_key, '-inf', now_ms - dead_ttl_ms)
  local size = redis.call('ZCARD', dead_key)
  local extra = size - #old - dead_max
  if extra > 0 then
    local oldest = redis.call('ZRANGE', dead_key, #old, #old + extra - 1)
    for _, id in ipairs(oldest) do old[#old + 1] = id end
  end
  for _, id in ipairs(old) do
    redis.call('ZREM', dead_key, id)
    redis.call('DEL', job_prefix .. id, done_prefix .. id, history_prefix .. id)
  end
end

-- Take an entry out of the stream and its consumer group's pending list. Returns 1 if it was pending.
local function resq_ack(stream_key, group, entry)
  if entry == nil or entry == '' then return 0 end
  local acked = redis.call('XACK', stream_key, group, entry)
  redis.call('XDEL', stream_key, entry)
  return acked
end

-- Append a lifecycle event to the job's history (capped) and publish it for live followers.
-- `extra` holds event-specific fields; task, queue and attempt are read from the job hash.
local function resq_note(job_key, history_key, channel, event, job_id, now_ms, extra)
  local info = redis.call('HMGET', job_key, 'task', 'queue', 'attempt')
  local e = {event = event, job_id = job_id, task = info[1] or '', queue = info[2] or '',
             attempt = tonumber(info[3] or '0') or 0, at_ms = tonumber(now_ms)}
  for k, v in pairs(extra or {}) do e[k] = v end
  local packed = cmsgpack.pack(e)
  redis.call('RPUSH', history_key, packed)
  redis.call('LTRIM', history_key, -100, -1)
  if channel ~= '' then redis.call('PUBLISH', channel, packed) end
end

-- The "type: message" text of an encoded error record (for history and events; the full record,
-- traceback included, stays in the job hash).
local function resq_error_text(packed)
  if packed == nil or packed == '' then return '' end
  local ok, err = pcall(cmsgpack.unpack, packed)
  if not ok or type(err) ~= 'table' then return '' end
  return tostring(err['type'] or '?') .. ': ' .. tostring(err['message'] or '')
end
