-- take: hand a worker up to `count` grouped jobs of a queue, lowest virtual finish time first (the groups
-- round-robin, weighted: _groups.lua), leased to it at once: each goes into the hand-out stream and is
-- read there by the worker's consumer in this same script, so its lease is a pending entry like any
-- other (the reaper finds it if the worker dies). Jobs of a paused group are set aside in the held zset.
-- KEYS[1..11] the queue's group keys (Keys.groups)
-- ARGV[1] consumer group   ARGV[2] consumer (the worker)   ARGV[3] count
-- Returns: the read's reply for the hand-out stream (as XREADGROUP: {{stream, {{entry, fields}, ...}}}),
-- or false when nothing was read. It may hold doorbell entries (the worker acks and drops them); the
-- bell is rung again when grouped jobs are left, for another idle worker.
local count = tonumber(ARGV[3])
redis.call('DEL', KEYS[8])
local taken, looked = 0, 0
while taken < count do
  local batch = redis.call('ZRANGE', KEYS[1], 0, count - taken - 1, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local member, score = batch[i], batch[i + 1]
    local group, id = resq_group_member(member)
    redis.call('ZREM', KEYS[1], member)
    if redis.call('HEXISTS', KEYS[4], group) == 1 then
      redis.call('ZADD', KEYS[5], score, member)
    else
      local flow = resq_group_flow(redis.call('HGET', KEYS[7], id), redis.call('HGET', KEYS[11], group), group)
      redis.call('HDEL', KEYS[7], id)
      resq_add_entry(KEYS[9], id, flow)
      redis.call('SET', KEYS[6], score)
      taken = taken + 1
    end
  end
  looked = looked + 1
  if looked > 20 then break end  -- a long run of paused groups' jobs: set aside, the rest next time
end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', taken + 10, 'STREAMS', KEYS[9], '>')
if redis.call('ZCARD', KEYS[1]) > 0 then resq_group_ring(1) end
if taken == 0 and not reply then return false end
return reply
