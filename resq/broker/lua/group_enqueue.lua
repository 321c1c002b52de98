-- group_enqueue: store new jobs of groups of one queue, due now, in the queue's fair order
-- (_groups.lua) instead of its stream; a worker's `take` hands them out. (A grouped job due later goes
-- through `enqueue` to the scheduled set, and `promote` adds it here when it is due.)
-- KEYS[1..11] the queue's group keys (Keys.groups)   then, per job i (from 0): KEYS[12+2i] job hash,
-- KEYS[13+2i] done list
-- ARGV[1] now (ms)   ARGV[2] queue name   ARGV[3] events channel ('' = nobody listens)
-- ARGV[4] 'nx' to create only if no record exists at all ('' otherwise)   ARGV[5] consumer group
-- then, per job i: ARGV[6+5i] job id   ARGV[7+5i] envelope (msgpack)   ARGV[8+5i] task name
-- ARGV[9+5i] group   ARGV[10+5i] flow (resq/flow.py: it names the group, and any limit)
-- Returns: per job, {status, created}, as `enqueue`.
local now = tonumber(ARGV[1])
local replies = {}
for i = 0, (#KEYS - 11) / 2 - 1 do
  local job_key, done_key = KEYS[12 + 2 * i], KEYS[13 + 2 * i]
  local a = 6 + 5 * i
  local id, envelope, task, group, flow = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local status = redis.call('HGET', job_key, 'status')
  if ARGV[4] == 'nx' and (status or redis.call('EXISTS', job_key) == 1) then
    replies[#replies + 1] = {status or 'exists', 0}
  elseif status and not RESQ_TERMINAL[status] then
    replies[#replies + 1] = {status, 0}
  else
    if status then redis.call('DEL', job_key, done_key) end  -- a finished job's id, reused
    redis.call('HSET', job_key, 'envelope', envelope, 'task', task, 'queue', ARGV[2], 'attempt', 0,
      'enqueued_ms', now, 'status', 'queued', 'group', group, 'flow', flow)
    resq_group_add(1, group, id, flow, ARGV[5])
    resq_publish_lazy(ARGV[3], function()
      return resq_event('enqueued', id, task, ARGV[2], 0, now, {group = group})
    end)
    replies[#replies + 1] = {'queued', 1}
  end
end
return replies
