-- enqueue: store new jobs and put each in its queue (or its scheduled set when due later). One call
-- takes one job (`.delay()`) or a chunk of jobs of one queue (`task.map`, `app.enqueue_many`).
-- KEYS[1] levels set (the queue's priorities above 0)   KEYS[2] scheduled zset
-- then, per job i (from 0): KEYS[3+3i] job hash   KEYS[4+3i] done list   KEYS[5+3i] the stream of its priority
-- ARGV[1] now (ms)   ARGV[2] queue name   ARGV[3] events channel ('' = nobody listens)
-- ARGV[4] 'nx' to create only if no record exists at all ('' otherwise)   ARGV[5] consumer group
-- then, per job i: ARGV[6+6i] job id   ARGV[7+6i] envelope (msgpack)   ARGV[8+6i] due (ms, 0 = now)
-- ARGV[9+6i] task name   ARGV[10+6i] priority (0-9)   ARGV[11+6i] flow (resq/flow.py, '' = none)
-- Returns: per job, {status, created} - created is 0 when a live job with this id already exists
-- (idempotent ids), or with 'nx' when any record of this id exists (e.g. a cron tick already fired).
local now = tonumber(ARGV[1])
local replies = {}

-- A job's flow fields, appended to `fields` (a job with no priority and no flow keeps the hash as small
-- as before).
local function with_flow(fields, priority, flow)
  if priority ~= '0' then
    fields[#fields + 1] = 'priority'
    fields[#fields + 1] = priority
  end
  if flow ~= '' then
    fields[#fields + 1] = 'flow'
    fields[#fields + 1] = flow
  end
  return fields
end

for i = 0, (#KEYS - 2) / 3 - 1 do
  local job_key, done_key, stream = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local a = 6 + 6 * i
  local id, envelope, due, task, priority, flow = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3],
    ARGV[a + 4], ARGV[a + 5]
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
      redis.call('HSET', job_key, unpack(with_flow({'envelope', envelope, 'task', task, 'queue', ARGV[2],
        'attempt', 0, 'enqueued_ms', now, 'status', 'scheduled', 'due_ms', due,
        'history', resq_note(false, ARGV[3], e)}, priority, flow)))
      replies[#replies + 1] = {'scheduled', 1}
    else
      -- The envelope waits in the stream entry (which the worker's read returns), keeping the hash small
      -- enough for Redis's compact encoding; it moves into the hash when the entry leaves (resq_ack).
      local entry
      if flow == '' then
        entry = redis.call('XADD', stream, '*', 'id', id, 'envelope', envelope)
      else
        entry = redis.call('XADD', stream, '*', 'id', id, 'envelope', envelope, 'flow', flow)
      end
      if priority ~= '0' and redis.call('SADD', KEYS[1], priority) == 1 then
        redis.pcall('XGROUP', 'CREATE', stream, ARGV[5], '0')  -- workers read the new level from now on
      end
      redis.call('HSET', job_key, unpack(with_flow({'task', task, 'queue', ARGV[2], 'attempt', 0,
        'enqueued_ms', now, 'status', 'queued', 'entry', entry}, priority, flow)))
      resq_publish_lazy(ARGV[3], function() return resq_event('enqueued', id, task, ARGV[2], 0, now, nil) end)
      replies[#replies + 1] = {'queued', 1}
    end
  end
end
return replies
