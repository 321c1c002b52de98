-- dead: a job that will not run again goes to the capped dead set, error kept.
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] dead zset   KEYS[4] done list   KEYS[5] history list
-- ARGV[1] group   ARGV[2] stream entry id ('' if none)   ARGV[3] error (msgpack)   ARGV[4] now (ms)
-- ARGV[5] job id   ARGV[6] dead ttl (ms)   ARGV[7] dead max size   ARGV[8] job key prefix
-- ARGV[9] done key prefix   ARGV[10] raw payload to keep when the envelope is missing ('' if none)
-- ARGV[11] duration (ms)   ARGV[12] history key prefix   ARGV[13] events channel
-- ARGV[14] '1' when an attempt ran and failed (a 'failed' event precedes 'dead')
-- Returns: 1
resq_ack(KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'status', 'dead', 'error', ARGV[3], 'finished_ms', ARGV[4],
  'duration_ms', ARGV[11])
if ARGV[10] ~= '' and redis.call('HEXISTS', KEYS[2], 'envelope') == 0 then
  redis.call('HSET', KEYS[2], 'envelope', ARGV[10])
end
redis.call('HDEL', KEYS[2], 'entry')
local err = resq_error_text(ARGV[3])
if ARGV[14] == '1' then
  resq_note(KEYS[2], KEYS[5], ARGV[13], 'failed', ARGV[5], ARGV[4], {duration_ms = tonumber(ARGV[11]), error = err})
end
resq_note(KEYS[2], KEYS[5], ARGV[13], 'dead', ARGV[5], ARGV[4], {error = err})
resq_add_dead(KEYS[3], KEYS[2], KEYS[4], KEYS[5], ARGV[5], tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  ARGV[8], ARGV[9], ARGV[12])
return 1
