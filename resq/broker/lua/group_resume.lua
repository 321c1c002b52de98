-- group_resume: a paused group of a queue is served again: its jobs set aside while it was paused go back
-- to the queue's fair order, with the scores they had (their place in the round-robin).
-- KEYS[1..11] the queue's group keys (Keys.groups)
-- ARGV[1] the group   ARGV[2] the MATCH pattern of its members (the group's name escaped, then '|*')
-- Returns: how many jobs went back.
redis.call('HDEL', KEYS[4], ARGV[1])
local moved, cursor = 0, '0'
repeat
  local found = redis.call('ZSCAN', KEYS[5], cursor, 'MATCH', ARGV[2], 'COUNT', 1000)
  cursor = found[1]
  for i = 1, #found[2], 2 do
    local member, score = found[2][i], found[2][i + 1]
    local group = resq_group_member(member)
    if group == ARGV[1] then
      redis.call('ZREM', KEYS[5], member)
      redis.call('ZADD', KEYS[1], score, member)
      moved = moved + 1
    end
  end
until cursor == '0'
if moved > 0 then resq_group_ring(1) end
return moved
