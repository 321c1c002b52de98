-- resque_promote: move due delayed jobs into their Resque queues, atomically, beside any scheduler of the
-- Resque family (Ruby's, php's or node's resque-scheduler; php-resque-ex-scheduler) doing the same: the
-- caller read the head of the second's list first (so that every key is declared here), and nothing moves
-- unless the list still starts with what it read (a scheduler that took them meanwhile leaves nothing to
-- move twice).
-- KEYS[1] the schedule zset (delayed_queue_schedule, or _schdlr_)   KEYS[2] the second's list
-- KEYS[3] set of queues   then for item i (from 1): KEYS[2 + 2i] its timestamps:<item> set
-- KEYS[3 + 2i] its queue's list
-- ARGV[1] the second (the zset's member)   ARGV[2] 'delayed:<ts>', the timestamps sets' member ('': the
-- layout keeps no such index)   then for item i: ARGV[3i] the item as read   ARGV[3i + 1] its queue
-- ARGV[3i + 2] the job to push there
-- Returns: the number of jobs moved (0: the list changed, read again)
local n = (#ARGV - 2) / 3
if n == 0 then  -- an empty second left behind (its list is gone): drop it from the schedule
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
  return 0
end
local head = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do
  if head[i] ~= ARGV[3 * i] then return 0 end
end
for i = 1, n do
  if ARGV[2] ~= '' then redis.call('SREM', KEYS[2 + 2 * i], ARGV[2]) end
  redis.call('SADD', KEYS[3], ARGV[3 * i + 1])
  redis.call('RPUSH', KEYS[3 + 2 * i], ARGV[3 * i + 2])
end
redis.call('LTRIM', KEYS[2], n, -1)
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return n
