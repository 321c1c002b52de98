-- revive: put a dead job back in its queue for a fresh series of attempts.
-- KEYS[1] dead zset   KEYS[2] queue stream   KEYS[3] job hash   KEYS[4] done list
-- ARGV[1] job id   ARGV[2] now (ms)   ARGV[3] events channel ('' = none)
-- Returns: 1 if the job was dead and is queued again, else 0.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[3], 'envelope', 'task', 'queue', 'history', 'flow')
if not f[1] then return 0 end
local entry = resq_add_entry(KEYS[2], ARGV[1], f[5])  -- its flow control goes with it
redis.call('PERSIST', KEYS[3])
redis.call('DEL', KEYS[4])
local e = resq_event('enqueued', ARGV[1], f[2], f[3], 0, ARGV[2], {from = 'dead'})
redis.call('HSET', KEYS[3], 'status', 'queued', 'entry', entry, 'attempt', 0, 'lost', 0, 'enqueued_ms', ARGV[2],
  'history', resq_note(f[4], ARGV[3], e))
redis.call('HDEL', KEYS[3], 'finished_ms', 'result')
return 1
