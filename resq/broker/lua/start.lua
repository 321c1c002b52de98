-- start: a worker begins an attempt of a job it fetched from the stream.
-- KEYS[1] job hash   KEYS[2] queue stream
-- ARGV[1] worker id   ARGV[2] now (ms)   ARGV[3] stream entry id   ARGV[4] job id
-- ARGV[5] events channel ('' = nobody listens)
-- Returns: {envelope, attempt, status} on start; {false, 0, status} when the job must not run
-- (cancelled, or finished by an earlier delivery); {false, 0, false, orphan} when the hash is gone:
-- `orphan` is 1 when the entry still waits in the stream (its job's record was deleted under it: a
-- worker sets it aside as dead), 0 when the entry went too (the queue was cleared); {false, 0, false, 0}
-- too when the entry is not the job's current one (a stale duplicate: the job was given back under a new
-- entry, e.g. by a worker that found Redis restored from an older snapshot, while this one was leased).
-- Writes no history entry: the entry that ends the attempt carries its start (see _lib.lua).
local f, broken = resq_fields(KEYS[1], 'status', 'envelope', 'attempt', 'task', 'queue', 'entry')
if not f then return broken end
local status = f[1]
if not status then return {false, 0, false, #redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])} end
if RESQ_TERMINAL[status] then return {false, 0, status} end
if f[6] and f[6] ~= ARGV[3] then return {false, 0, false, 0} end
local attempt = (tonumber(f[3]) or 0) + 1
if attempt == 1 then
  redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', attempt, 'started_ms', ARGV[2], 'worker', ARGV[1],
    'entry', ARGV[3], 'first_started_ms', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', attempt, 'started_ms', ARGV[2], 'worker', ARGV[1],
    'entry', ARGV[3])
end
resq_publish_lazy(ARGV[5], function()
  return resq_event('started', ARGV[4], f[4], f[5], attempt, ARGV[2], {worker = ARGV[1]})
end)
return {f[2], attempt, status}
