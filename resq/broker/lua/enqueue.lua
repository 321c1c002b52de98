-- enqueue: store a new job and put it in its queue (or its scheduled set when due later).
-- KEYS[1] job hash   KEYS[2] queue stream   KEYS[3] scheduled zset   KEYS[4] history list
-- ARGV[1] job id   ARGV[2] envelope (msgpack)   ARGV[3] now (ms)   ARGV[4] due (ms, 0 = now)
-- ARGV[5] task name   ARGV[6] queue name   ARGV[7] events channel ('' = none)
-- ARGV[8] optional 'nx': create only if no record exists at all
-- Returns: {status, created} - created is 0 when a live job with this id already exists (idempotent ids),
-- or with 'nx' when any record of this id exists, finished or not (e.g. a cron tick already fired).
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[8] == 'nx' and redis.call('EXISTS', KEYS[1]) == 1 then
  return {status or 'exists', 0}
end
if status and not RESQ_TERMINAL[status] then
  return {status, 0}
end
redis.call('DEL', KEYS[1], KEYS[4])
local due = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'envelope', ARGV[2], 'task', ARGV[5], 'queue', ARGV[6],
  'attempt', 0, 'enqueued_ms', ARGV[3])
if due > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'scheduled', 'due_ms', due)
  resq_note(KEYS[1], KEYS[4], ARGV[7], 'scheduled', ARGV[1], ARGV[3], {due_ms = due})
  return {'scheduled', 1}
end
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'entry', entry)
resq_note(KEYS[1], KEYS[4], ARGV[7], 'enqueued', ARGV[1], ARGV[3], nil)
return {'queued', 1}
