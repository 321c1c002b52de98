-- start: a worker begins an attempt of a job it fetched from the stream.
-- KEYS[1] job hash   KEYS[2] history list
-- ARGV[1] worker id   ARGV[2] now (ms)   ARGV[3] stream entry id   ARGV[4] job id   ARGV[5] events channel
-- Returns: {envelope, attempt, status} on start; {false, 0, status} when the job must not run
-- (cancelled, or finished by an earlier delivery); {false, 0, false} when the hash is gone.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {false, 0, false} end
if RESQ_TERMINAL[status] then
  return {false, 0, status}
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'started_ms', ARGV[2], 'worker', ARGV[1], 'entry', ARGV[3])
if attempt == 1 then redis.call('HSET', KEYS[1], 'first_started_ms', ARGV[2]) end
resq_note(KEYS[1], KEYS[2], ARGV[5], 'started', ARGV[4], ARGV[2], {worker = ARGV[1]})
return {redis.call('HGET', KEYS[1], 'envelope'), attempt, status}
