-- retry: a failed attempt goes to the scheduled set, due after its backoff.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] scheduled zset   KEYS[4] history list
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] error (msgpack)   ARGV[4] now (ms)
-- ARGV[5] due (ms)   ARGV[6] job id   ARGV[7] duration (ms)   ARGV[8] events channel
-- Returns: 1, or 0 when the job hash is gone.
resq_ack(KEYS[1], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'status', 'retrying', 'error', ARGV[3], 'due_ms', ARGV[5],
  'failed_ms', ARGV[4], 'duration_ms', ARGV[7])
redis.call('HDEL', KEYS[2], 'entry')
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
local err = resq_error_text(ARGV[3])
resq_note(KEYS[2], KEYS[4], ARGV[8], 'failed', ARGV[6], ARGV[4], {duration_ms = tonumber(ARGV[7]), error = err})
resq_note(KEYS[2], KEYS[4], ARGV[8], 'retrying', ARGV[6], ARGV[4], {due_ms = tonumber(ARGV[5])})
return 1
