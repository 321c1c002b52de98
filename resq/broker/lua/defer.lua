-- defer: store a callback of a join (a chord's, a batch's, a depends_on job) as a deferred job in its
-- queue's slot: its envelope in its hash, queued only when its join releases it (deferred.lua).
-- KEYS[1] job hash   KEYS[2] done list
-- ARGV[1] job id   ARGV[2] queue   ARGV[3] task   ARGV[4] envelope   ARGV[5] priority   ARGV[6] flow
-- ARGV[7] the join it is the callback of   ARGV[8] its parents (a depends_on's, packed {id, queue} pairs;
-- '' = none)   ARGV[9] the joins it is a member of itself ('' = none: a batch it was made in)
-- ARGV[10] now (ms)   ARGV[11] events channel ('' = none)
-- Returns: 'ok', or 'exists' (nothing written) when its id is a live job's.
local status = redis.call('HGET', KEYS[1], 'status')
if status and not RESQ_TERMINAL[status] then return 'exists' end
redis.call('DEL', KEYS[1], KEYS[2])  -- a finished job's id, reused
local extra = {'join', ARGV[7]}
if ARGV[8] ~= '' then
  extra[#extra + 1] = 'parents'
  extra[#extra + 1] = ARGV[8]
end
redis.call('HSET', KEYS[1], unpack(resq_job_fields({'envelope', ARGV[4], 'task', ARGV[3], 'queue', ARGV[2],
  'attempt', 0, 'enqueued_ms', ARGV[10], 'status', 'deferred'}, ARGV[5], ARGV[6], extra)))
resq_keep_joins(KEYS[1], ARGV[9])
resq_publish_lazy(ARGV[11], function()
  return resq_event('deferred', ARGV[1], ARGV[3], ARGV[2], 0, tonumber(ARGV[10]), {join = ARGV[7]})
end)
return 'ok'
