-- last_tick: compare-and-set of a periodic entry's last fired tick; the step that makes a tick "done".
-- Any number of schedulers may run it for the same tick: the stored tick only ever moves forward.
-- KEYS[1] cron:last hash (entry -> last tick ms)   KEYS[2] the entry's unique lock (string), or absent
-- ARGV[1] entry name   ARGV[2] tick (ms)   ARGV[3] job id to record in the unique lock ('' = none)
-- Returns: 1 when the tick was recorded (it was newer than the stored one), 0 otherwise.
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local tick = tonumber(ARGV[2])
if last >= tick then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[2] and ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
end
return 1
