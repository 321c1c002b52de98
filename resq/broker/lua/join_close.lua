-- join_close: close an open join (a batch whose `with` block ended, a chord whose members are enqueued):
-- from now on it is decided as soon as its members ended (_workflow.lua), at once if they all have.
-- KEYS[1] join hash
-- ARGV[1] join id   ARGV[2] now (ms)   ARGV[3] events channel ('' = none)
-- Returns: the join's member count, or false when it is gone.
if redis.call('HSET', KEYS[1], 'open', '0') == 1 then  -- the field was new: there was no such join
  redis.call('DEL', KEYS[1])
  return false
end
resq_join_check(ARGV[1], tonumber(ARGV[2]), ARGV[3], nil, nil)
return tonumber(redis.call('HGET', KEYS[1], 'total'))
