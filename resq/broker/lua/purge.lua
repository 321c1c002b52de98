-- purge: delete dead jobs for good, with their records (only those still in the dead set, so a job
-- revived meanwhile keeps its record).
-- KEYS[1] dead zset
-- ARGV[1] job key prefix   ARGV[2] done key prefix   ARGV[3..] job ids
-- (the prefixes carry the queue's hash tag, so the keys built from them live in KEYS[1]'s slot)
-- Returns: how many jobs were deleted.
local n = 0
for i = 3, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', ARGV[1] .. ARGV[i], ARGV[2] .. ARGV[i])
    n = n + 1
  end
end
return n
