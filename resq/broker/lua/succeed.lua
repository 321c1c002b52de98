-- succeed: record a job's result and take it off the queue, in one step.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] done list   KEYS[4] history list
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] result (msgpack)   ARGV[4] now (ms)
-- ARGV[5] result ttl (ms)   ARGV[6] duration (ms)   ARGV[7] job id   ARGV[8] events channel
-- Returns: 1, or 0 when the job hash is gone.
resq_ack(KEYS[1], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'status', 'succeeded', 'result', ARGV[3], 'finished_ms', ARGV[4],
  'duration_ms', ARGV[6])
redis.call('HDEL', KEYS[2], 'entry')
resq_note(KEYS[2], KEYS[4], ARGV[8], 'succeeded', ARGV[7], ARGV[4], {duration_ms = tonumber(ARGV[6])})
resq_finish(KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[5]))
return 1
