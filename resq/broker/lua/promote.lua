-- promote: move due jobs from a queue's scheduled set into its streams, atomically.
-- Any number of schedulers and workers may run it at once: a job moves exactly once.
-- KEYS[1] scheduled zset   KEYS[2] levels set (the queue's priorities above 0)
-- KEYS[3 + p] the stream of priority p, for p = 0 to 9   KEYS[13..23] the queue's group keys (Keys.groups)
-- ARGV[1] now (ms)   ARGV[2] batch limit   ARGV[3] job key prefix   ARGV[4] events channel ('' = none)
-- ARGV[5] consumer group
-- (the prefix carries the same hash tag as KEYS, so the keys built from it live in the same slot)
-- Returns: {moved, next due (ms) or -1}
local broken = resq_guard(KEYS[1], 'zset', KEYS[3], 'stream')
if broken then return broken end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  local job_key = ARGV[3] .. id
  local f
  f, broken = resq_fields(job_key, 'status', 'task', 'queue', 'attempt', 'history', 'priority', 'flow')
  if not f then return broken end  -- the jobs moved so far stay moved: each move is whole
  redis.call('ZREM', KEYS[1], id)
  local status = f[1]
  local group = false
  if f[7] then
    local ok, flow = pcall(cmsgpack.unpack, f[7])
    if ok and type(flow) == 'table' and flow.g then group = tostring(flow.g) end
  end
  if (status == 'scheduled' or status == 'retrying') and group then  -- back in its group's fair order
    resq_group_add(13, group, id, f[7], ARGV[5])
    local e = resq_event('enqueued', id, f[2], f[3], f[4], ARGV[1], {from = status, group = group})
    redis.call('HSET', job_key, 'status', 'queued', 'history', resq_note(f[5], ARGV[4], e))
    redis.call('HDEL', job_key, 'due_ms', 'entry')
    moved = moved + 1
  elseif status == 'scheduled' or status == 'retrying' then
    local priority = tonumber(f[6]) or 0
    local stream = KEYS[3 + priority] or KEYS[3]
    local entry = resq_add_entry(stream, id, f[7])
    if priority > 0 and redis.call('SADD', KEYS[2], priority) == 1 then
      redis.pcall('XGROUP', 'CREATE', stream, ARGV[5], '0')  -- workers read the new level from now on
    end
    local e = resq_event('enqueued', id, f[2], f[3], f[4], ARGV[1], {from = status})
    redis.call('HSET', job_key, 'status', 'queued', 'entry', entry, 'history', resq_note(f[5], ARGV[4], e))
    redis.call('HDEL', job_key, 'due_ms')
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {moved, -1} end
return {moved, tonumber(nxt[2])}
