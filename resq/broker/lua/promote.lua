-- promote: move due jobs from a queue's scheduled set into its streams, atomically.
-- Any number of schedulers and workers may run it at once: a job moves exactly once. The caller read the
-- due ids first (so that every key is declared here): an id no longer in the set, or no longer due (moved
-- or scheduled again meanwhile), is left alone.
-- KEYS[1] scheduled zset   KEYS[2] levels set (the queue's priorities above 0)
-- KEYS[3 + p] the stream of priority p, for p = 0 to 9   KEYS[13..23] the queue's group keys (Keys.groups)
-- then KEYS[23 + i] the job hash of due id i (from 1)
-- ARGV[1] now (ms)   ARGV[2] events channel ('' = none)   ARGV[3] consumer group   ARGV[3 + i] due id i
-- Returns: {moved, next due (ms) or -1}
local broken = resq_guard(KEYS[1], 'zset', KEYS[3], 'stream')
if broken then return broken end
local moved = 0
for i = 4, #ARGV do
  local id, job_key = ARGV[i], KEYS[20 + i]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
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
      resq_group_add(13, group, id, f[7], ARGV[3])
      local e = resq_event('enqueued', id, f[2], f[3], f[4], ARGV[1], {from = status, group = group})
      redis.call('HSET', job_key, 'status', 'queued', 'history', resq_note(f[5], ARGV[2], e))
      redis.call('HDEL', job_key, 'due_ms', 'entry')
      moved = moved + 1
    elseif status == 'scheduled' or status == 'retrying' then
      local priority = tonumber(f[6]) or 0
      local stream = KEYS[3 + priority] or KEYS[3]
      local entry = resq_add_entry(stream, id, f[7])
      if priority > 0 and redis.call('SADD', KEYS[2], priority) == 1 then
        redis.pcall('XGROUP', 'CREATE', stream, ARGV[3], '0')  -- workers read the new level from now on
      end
      local e = resq_event('enqueued', id, f[2], f[3], f[4], ARGV[1], {from = status})
      redis.call('HSET', job_key, 'status', 'queued', 'entry', entry, 'history', resq_note(f[5], ARGV[2], e))
      redis.call('HDEL', job_key, 'due_ms')
      moved = moved + 1
    end
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {moved, -1} end
return {moved, tonumber(nxt[2])}
