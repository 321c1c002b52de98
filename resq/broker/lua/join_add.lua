-- join_add: register jobs about to be enqueued as members of a join ('pending'), before they exist (so
-- that their end, whenever it comes, finds them counted), or drop ones that were not made after all.
-- KEYS[1] join hash   KEYS[2] members hash   KEYS[3] results hash
-- ARGV[1] join id   ARGV[2] now (ms)   ARGV[3] 'add' or 'drop'   ARGV[4..] the job ids
-- Returns: with 'add', the ids registered now (those registered before are left as they are: a job
-- enqueued again under its id); with 'drop' (ids that 'add' registered, whose jobs were not created: an
-- id taken by a live job), the decided callbacks (resq_join_decide), as the join may be decided now.
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
if ARGV[3] == 'add' then return resq_join_add(nil, KEYS[1], KEYS[2], ids) end
local dropped = 0
for _, id in ipairs(ids) do
  if redis.call('HGET', KEYS[2], id) == 'pending' then
    redis.call('HDEL', KEYS[2], id)
    dropped = dropped + 1
  end
end
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'total', -dropped) end
return resq_join_decide(resq_join_read(KEYS[1]), KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), nil, nil)
