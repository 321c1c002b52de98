-- purge: delete dead jobs for good, with their records (only those still in the dead set, so a job
-- revived meanwhile keeps its record).
-- KEYS[1] dead zset, then per job i (from 1): KEYS[2i] its job hash   KEYS[2i+1] its done list
-- ARGV[i] job id i
-- Returns: how many jobs were deleted.
local n = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', KEYS[2 * i], KEYS[2 * i + 1])
    n = n + 1
  end
end
return n
