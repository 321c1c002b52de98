-- cancelled: a worker records that it stopped (or skipped) a job whose cancellation was asked for.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] done list   KEYS[4] cancel set
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] job id   ARGV[4] now (ms)   ARGV[5] ttl (ms)
-- ARGV[6] reason
-- Returns: 1
resq_settle(KEYS[1], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[4], 'cancel_reason', ARGV[6])
redis.call('HDEL', KEYS[2], 'entry')
resq_finish(KEYS[2], KEYS[3], tonumber(ARGV[5]))
return 1
