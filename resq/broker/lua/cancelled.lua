-- cancelled: a worker records that it stopped (or skipped) a job whose cancellation was asked for.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] done list   KEYS[4] cancel set   KEYS[5] history list
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] job id   ARGV[4] now (ms)   ARGV[5] ttl (ms)
-- ARGV[6] reason   ARGV[7] events channel
-- Returns: 1, or 0 when the job hash is gone.
resq_ack(KEYS[1], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_ms', ARGV[4], 'cancel_reason', ARGV[6])
redis.call('HDEL', KEYS[2], 'entry')
resq_note(KEYS[2], KEYS[5], ARGV[7], 'cancelled', ARGV[3], ARGV[4], {reason = ARGV[6]})
resq_finish(KEYS[2], KEYS[3], KEYS[5], tonumber(ARGV[5]))
return 1
