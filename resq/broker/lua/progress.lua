-- progress: a running task reports how far it is (Job.progress(fraction, note)). The report replaces the
-- previous one in the job hash's `progress` field; it is not added to the history (too chatty), and is
-- published as the event `progress` when someone listens.
-- KEYS[1] job hash
-- ARGV[1] fraction (0 to 1)   ARGV[2] note ('' = none)   ARGV[3] now (ms)   ARGV[4] job id
-- ARGV[5] events channel ('' = nobody listens)   ARGV[6] the field's value (msgpack {fraction, note, at_ms})
-- Returns: 1 when recorded; 0 when the job is not running (queued, finished, unknown): nothing is written.
local f, broken = resq_fields(KEYS[1], 'status', 'task', 'queue', 'attempt')
if not f then return broken end
if f[1] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[6])
resq_publish_lazy(ARGV[5], function()
  local note = nil
  if ARGV[2] ~= '' then note = ARGV[2] end
  return resq_event('progress', ARGV[4], f[2], f[3], f[4], ARGV[3], {fraction = tonumber(ARGV[1]), note = note})
end)
return 1
