-- enqueue: store new jobs and put each in its queue (or its scheduled set when due later). One call
-- takes one job (`.delay()`) or a chunk of jobs of one queue (`task.map`, `app.enqueue_many`).
-- KEYS[1] levels set (the queue's priorities above 0)   KEYS[2] scheduled zset
-- then, per job i (from 0): KEYS[3+3i] job hash   KEYS[4+3i] done list   KEYS[5+3i] the stream of its priority
-- ARGV[1] now (ms)   ARGV[2] queue name   ARGV[3] events channel ('' = nobody listens)
-- ARGV[4] 'nx' to create only if no record exists at all ('' otherwise)   ARGV[5] consumer group
-- then, per job i: ARGV[6+7i] job id   ARGV[7+7i] envelope (msgpack)   ARGV[8+7i] due (ms, 0 = now)
-- ARGV[9+7i] task name   ARGV[10+7i] priority (0-9)   ARGV[11+7i] flow (resq/flow.py, '' = none)
-- ARGV[12+7i] the joins it is a member of (a chord's, a batch's: _workflow.lua; '' = none)
-- Returns: per job, {status, created} - created is 0 when a live job with this id already exists
-- (idempotent ids), or with 'nx' when any record of this id exists (e.g. a cron tick already fired).
-- Each job is made by resq_create_job (_lib.lua), which the `unique` script shares; a job created keeps
-- its joins in its hash (its caller registered it in each join first: resq/broker/handoff.py).
local now = tonumber(ARGV[1])
local replies = {}
for i = 0, (#KEYS - 2) / 3 - 1 do
  local a = 6 + 7 * i
  local reply = resq_create_job(KEYS[1], KEYS[2], KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i], now,
    ARGV[2], ARGV[3], ARGV[5], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    ARGV[4] == 'nx', nil)
  if reply[2] == 1 then resq_keep_joins(KEYS[3 + 3 * i], ARGV[a + 6]) end
  replies[#replies + 1] = reply
end
return replies
