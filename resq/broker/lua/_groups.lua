-- Fair queuing between the groups of a queue (apply_async(group=...)), prepended to every script after
-- _lib.lua. A grouped job waits in the queue's `grouped` zset, not in a stream, as the member
-- `<group>|<id>` scored with a virtual finish time: a group's next job is scored one step (1 / its
-- weight) after the group's last, and never before the queue's virtual clock (the score of the last job
-- handed out). Handing out the lowest scores first serves the groups round-robin, weighted, whatever
-- their sizes: a group of 100,000 jobs and one of 10 alternate from the moment the small one arrives.
-- A script that uses these takes the keys of Keys.groups() as one block, from KEYS[k]:
--   k grouped zset   k+1 group -> last virtual time   k+2 group -> weight   k+3 paused groups
--   k+4 held zset (jobs of paused groups set aside)   k+5 the virtual clock   k+6 id -> flow
--   k+7 doorbell flag   k+8 the stream grouped jobs are handed out through   k+9 levels set
--   k+10 group -> its own limits (msgpack {c = n, r = {n, window ms}}: app.group_limits)

local RESQ_GROUP_LEVEL = '10'

-- Ring the doorbell: one entry in the group stream wakes one worker blocked on the queue (grouped jobs
-- are in no stream it could block on). At most one rings at a time; the worker that answers clears it.
local function resq_group_ring(k)
  if redis.call('SET', KEYS[k + 7], '1', 'NX') then
    redis.call('XADD', KEYS[k + 8], '*', 'bell', '1')
  end
end

-- Add job `id` of `group` (its flow `flow`, '' for none) to the queue's fair order; `group_name` for
-- the consumer group of the hand-out stream (made the first time a queue has groups).
local function resq_group_add(k, group, id, flow, group_name)
  local clock = tonumber(redis.call('GET', KEYS[k + 5]) or 0)
  local last = tonumber(redis.call('HGET', KEYS[k + 1], group) or 0)
  local weight = tonumber(redis.call('HGET', KEYS[k + 2], group) or 1)
  if not weight or weight <= 0 then weight = 1 end
  local score = math.max(clock, last) + 1 / weight
  redis.call('HSET', KEYS[k + 1], group, string.format('%.17g', score))
  local member = group .. '|' .. id
  if redis.call('HEXISTS', KEYS[k + 3], group) == 1 then
    redis.call('ZADD', KEYS[k + 4], score, member)
  else
    redis.call('ZADD', KEYS[k], score, member)
  end
  if flow ~= '' then redis.call('HSET', KEYS[k + 6], id, flow) end
  if redis.call('SADD', KEYS[k + 9], RESQ_GROUP_LEVEL) == 1 then
    redis.pcall('XGROUP', 'CREATE', KEYS[k + 8], group_name, '0', 'MKSTREAM')
  end
  resq_group_ring(k)
end

-- The flow a grouped job is handed out with: its own (`flow`, false or '' for none) with the group's own
-- limits (`limits`, msgpack, or false) as its concurrency and rate keys `group:<name>`, which start.lua
-- then applies as it applies a task's.
local function resq_group_flow(flow, limits, group)
  if not limits then return flow end
  local ok, l = pcall(cmsgpack.unpack, limits)
  if not ok or type(l) ~= 'table' then return flow end
  local f = {}
  if flow and flow ~= '' then
    local good, found = pcall(cmsgpack.unpack, flow)
    if good and type(found) == 'table' then f = found end
  end
  if l.c then f.c = {'group:' .. group, l.c} end
  if l.r then f.r = {'group:' .. group, l.r[1], l.r[2]} end
  f.g = group
  return cmsgpack.pack(f)
end

-- The group and the id of a member of the grouped zset (ids hold no '|': the last one splits them).
local function resq_group_member(member)
  local at = member:match('^.*()|')
  return member:sub(1, at - 1), member:sub(at + 1)
end
