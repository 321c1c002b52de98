-- enqueue: store a new job and put it in its queue (or its scheduled set when due later).
-- KEYS[1] job hash   KEYS[2] queue stream   KEYS[3] scheduled zset   KEYS[4] done list
-- ARGV[1] job id   ARGV[2] envelope (msgpack)   ARGV[3] now (ms)   ARGV[4] due (ms, 0 = now)
-- ARGV[5] task name   ARGV[6] queue name   ARGV[7] events channel ('' = nobody listens)
-- ARGV[8] optional 'nx': create only if no record exists at all
-- Returns: {status, created} - created is 0 when a live job with this id already exists (idempotent ids),
-- or with 'nx' when any record of this id exists, finished or not (e.g. a cron tick already fired).
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[8] == 'nx' and (status or redis.call('EXISTS', KEYS[1]) == 1) then
  return {status or 'exists', 0}
end
if status and not RESQ_TERMINAL[status] then
  return {status, 0}
end
if status then redis.call('DEL', KEYS[1], KEYS[4]) end  -- a finished job's id, reused
local due = tonumber(ARGV[4])
if due > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  local e = resq_event('scheduled', ARGV[1], ARGV[5], ARGV[6], 0, ARGV[3], {due_ms = due})
  redis.call('HSET', KEYS[1], 'envelope', ARGV[2], 'task', ARGV[5], 'queue', ARGV[6], 'attempt', 0,
    'enqueued_ms', ARGV[3], 'status', 'scheduled', 'due_ms', due, 'history', resq_note(false, ARGV[7], e))
  return {'scheduled', 1}
end
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[1], 'envelope', ARGV[2], 'task', ARGV[5], 'queue', ARGV[6], 'attempt', 0,
  'enqueued_ms', ARGV[3], 'status', 'queued', 'entry', entry)
resq_publish(ARGV[7], resq_event('enqueued', ARGV[1], ARGV[5], ARGV[6], 0, ARGV[3], nil))
return {'queued', 1}
