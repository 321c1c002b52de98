-- Shared helpers, prepended to every script by resq/scripts/__init__.py.
-- Keys built here from a prefix share the queue's hash tag, so a script still touches one slot.

-- Record a final state: expire the job hash and wake result() waiters through the done list.
local function resq_finish(job_key, done_key, ttl_ms)
  redis.call('PEXPIRE', job_key, ttl_ms)
  redis.call('RPUSH', done_key, '1')
  redis.call('PEXPIRE', done_key, ttl_ms)
end

-- Put a job in the dead set, then trim the set by age and size (dropping the trimmed jobs' keys).
local function resq_bury(dead_key, job_key, done_key, job_id, now_ms, dead_ttl_ms, dead_max, job_prefix, done_prefix)
  redis.call('ZADD', dead_key, now_ms, job_id)
  resq_finish(job_key, done_key, dead_ttl_ms)
  local old = redis.call('ZRANGEBYSCORE', dead_key, '-inf', now_ms - dead_ttl_ms)
  local size = redis.call('ZCARD', dead_key)
  local extra = size - #old - dead_max
  if extra > 0 then
    local oldest = redis.call('ZRANGE', dead_key, #old, #old + extra - 1)
    for _, id in ipairs(oldest) do old[#old + 1] = id end
  end
  for _, id in ipairs(old) do
    redis.call('ZREM', dead_key, id)
    redis.call('DEL', job_prefix .. id, done_prefix .. id)
  end
end

-- Take an entry out of the stream and its consumer group's pending list. Returns 1 if it was pending.
local function resq_settle(stream_key, group, entry)
  if entry == nil or entry == '' then return 0 end
  local acked = redis.call('XACK', stream_key, group, entry)
  redis.call('XDEL', stream_key, entry)
  return acked
end
