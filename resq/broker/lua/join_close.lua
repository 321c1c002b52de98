-- join_close: close an open join (a batch whose `with` block ended, a chord whose members are enqueued,
-- a depends_on whose parents are attached): from now on it is decided as soon as its members ended
-- (_workflow.lua), at once if they all have.
-- KEYS[1] join hash   KEYS[2] members hash   KEYS[3] results hash
-- ARGV[1] join id   ARGV[2] now (ms)
-- Returns: {the join's member count, the decided callbacks (resq_join_decide)}, or false when it is gone.
if redis.call('HSET', KEYS[1], 'open', '0') == 1 then  -- the field was new: there was no such join
  redis.call('DEL', KEYS[1])
  return false
end
local j = resq_join_read(KEYS[1])
local decided = resq_join_decide(j, KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), nil, nil)
return {j.total, decided}
