-- promote: move due jobs from a queue's scheduled set into its stream, atomically.
-- Any number of schedulers and workers may run it at once: a job moves exactly once.
-- KEYS[1] scheduled zset   KEYS[2] queue stream
-- ARGV[1] now (ms)   ARGV[2] batch limit   ARGV[3] job key prefix   ARGV[4] history key prefix
-- ARGV[5] events channel
-- (the prefixes carry the same hash tag as KEYS, so the keys built from them live in the same slot)
-- Returns: {moved, next due (ms) or -1}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local job_key = ARGV[3] .. id
  local status = redis.call('HGET', job_key, 'status')
  if status == 'scheduled' or status == 'retrying' then
    local entry = redis.call('XADD', KEYS[2], '*', 'id', id)
    redis.call('HSET', job_key, 'status', 'queued', 'entry', entry)
    redis.call('HDEL', job_key, 'due_ms')
    resq_note(job_key, ARGV[4] .. id, ARGV[5], 'enqueued', id, ARGV[1], {from = status})
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {moved, -1} end
return {moved, tonumber(nxt[2])}
