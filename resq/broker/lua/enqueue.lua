-- enqueue: store new jobs and put each in its queue (or its scheduled set when due later). One call
-- takes one job (`.delay()`) or a chunk of jobs of one queue (`task.map`, `app.enqueue_many`).
-- KEYS[1] queue stream   KEYS[2] scheduled zset   then, per job i (from 0): KEYS[3+2i] job hash,
-- KEYS[4+2i] done list
-- ARGV[1] now (ms)   ARGV[2] queue name   ARGV[3] events channel ('' = nobody listens)
-- ARGV[4] 'nx' to create only if no record exists at all ('' otherwise)
-- then, per job i: ARGV[5+4i] job id   ARGV[6+4i] envelope (msgpack)   ARGV[7+4i] due (ms, 0 = now)
-- ARGV[8+4i] task name
-- Returns: per job, {status, created} - created is 0 when a live job with this id already exists
-- (idempotent ids), or with 'nx' when any record of this id exists (e.g. a cron tick already fired).
local now = tonumber(ARGV[1])
local replies = {}
for i = 0, (#KEYS - 2) / 2 - 1 do
  local job_key, done_key = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local id, envelope, due, task = ARGV[5 + 4 * i], ARGV[6 + 4 * i], tonumber(ARGV[7 + 4 * i]), ARGV[8 + 4 * i]
  local status = redis.call('HGET', job_key, 'status')
  if ARGV[4] == 'nx' and (status or redis.call('EXISTS', job_key) == 1) then
    replies[#replies + 1] = {status or 'exists', 0}
  elseif status and not RESQ_TERMINAL[status] then
    replies[#replies + 1] = {status, 0}
  else
    if status then redis.call('DEL', job_key, done_key) end  -- a finished job's id, reused
    if due > now then
      redis.call('ZADD', KEYS[2], due, id)
      local e = resq_event('scheduled', id, task, ARGV[2], 0, now, {due_ms = due})
      redis.call('HSET', job_key, 'envelope', envelope, 'task', task, 'queue', ARGV[2], 'attempt', 0,
        'enqueued_ms', now, 'status', 'scheduled', 'due_ms', due, 'history', resq_note(false, ARGV[3], e))
      replies[#replies + 1] = {'scheduled', 1}
    else
      -- The envelope waits in the stream entry (which the worker's read returns), keeping the hash small
      -- enough for Redis's compact encoding; it moves into the hash when the entry leaves (resq_ack).
      local entry = redis.call('XADD', KEYS[1], '*', 'id', id, 'envelope', envelope)
      redis.call('HSET', job_key, 'task', task, 'queue', ARGV[2], 'attempt', 0, 'enqueued_ms', now,
        'status', 'queued', 'entry', entry)
      resq_publish_lazy(ARGV[3], function() return resq_event('enqueued', id, task, ARGV[2], 0, now, nil) end)
      replies[#replies + 1] = {'queued', 1}
    end
  end
end
return replies
