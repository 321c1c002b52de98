-- revive: put a dead job back in its queue for a fresh series of attempts.
-- KEYS[1] dead zset   KEYS[2] queue stream   KEYS[3] job hash   KEYS[4] done list   KEYS[5] history list
-- ARGV[1] job id   ARGV[2] now (ms)   ARGV[3] events channel
-- Returns: 1 if the job was dead and is queued again, else 0.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[3], 'envelope') == 0 then return 0 end
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('PERSIST', KEYS[3])
redis.call('PERSIST', KEYS[5])
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[3], 'status', 'queued', 'entry', entry, 'attempt', 0, 'lost', 0, 'enqueued_ms', ARGV[2])
redis.call('HDEL', KEYS[3], 'finished_ms', 'result')
resq_note(KEYS[3], KEYS[5], ARGV[3], 'enqueued', ARGV[1], ARGV[2], {from = 'dead'})
return 1
