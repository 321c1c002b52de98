-- join: open a join (_workflow.lua): the record of a chord, a batch or a depends_on, with its callbacks
-- created as deferred jobs; a depends_on's parents (existing jobs) are counted when they ended already, or
-- told to settle the join when they end.
-- KEYS[1] join hash   KEYS[2] members hash, then per callback: its job hash (the names _workflow.lua uses)
-- ARGV[1] join id   ARGV[2] now (ms)   ARGV[3] events channel ('' = none)   ARGV[4] kind ('chord', 'batch',
-- 'deps')   ARGV[5] policy for a failed member ('fail', 'cancel', 'run', 'wait')   ARGV[6] '1': open (members
-- join later, then join_close), '0': closed now   ARGV[7] keep (ms: how long the record stays once every
-- member ended)   ARGV[8] description   ARGV[9] the number of callbacks, then per callback (8 each): role
-- ('success' or 'complete'), id, queue, task, envelope, priority, flow, its own joins ('' = none: a batch it
-- was made in); then per parent (2 each): id, queue
-- Returns: {'ok'}, or nothing written and {'exists', id} (a callback's id is a live job's), {'missing', id}
-- (a parent has no record) or {'cycle', id} (the callback is an ancestor of a parent).
local wid, now, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n = tonumber(ARGV[9])
local callbacks, parents = {}, {}
for i = 0, n - 1 do
  local a = 10 + 8 * i
  callbacks[#callbacks + 1] = {role = ARGV[a], id = ARGV[a + 1], queue = ARGV[a + 2], task = ARGV[a + 3],
    envelope = ARGV[a + 4], priority = ARGV[a + 5], flow = ARGV[a + 6], joins = ARGV[a + 7]}
end
for a = 10 + 8 * n, #ARGV, 2 do parents[#parents + 1] = {ARGV[a], ARGV[a + 1]} end

-- Whether job `target` is one of the ancestors of `start` (the parents of a depends_on, theirs, ...).
local function is_ancestor(target, start)
  local seen, stack, looked = {}, {}, 0
  for _, p in ipairs(start) do stack[#stack + 1] = p end
  while #stack > 0 do
    local p = table.remove(stack)
    if p[1] == target then return true end
    local name = p[2] .. '|' .. p[1]
    if not seen[name] and looked < 10000 then
      seen[name], looked = true, looked + 1
      local packed = redis.call('HGET', RESQ_KEY.job(p[2], p[1]), 'parents')
      local ok, up = pcall(cmsgpack.unpack, packed or '')
      if packed and ok and type(up) == 'table' then
        for _, g in ipairs(up) do stack[#stack + 1] = g end
      end
    end
  end
  return false
end

for i, c in ipairs(callbacks) do
  if is_ancestor(c.id, parents) then return {'cycle', c.id} end
  local status = redis.call('HGET', KEYS[2 + i], 'status')
  if status and not RESQ_TERMINAL[status] then return {'exists', c.id} end
end
for _, p in ipairs(parents) do
  if p[1] == (callbacks[1] or {}).id then return {'cycle', p[1]} end
  if not redis.call('HGET', RESQ_KEY.job(p[2], p[1]), 'status') then return {'missing', p[1]} end
end

redis.call('DEL', KEYS[1], KEYS[2], RESQ_KEY.results(wid))
local record = {'kind', ARGV[4], 'open', ARGV[6], 'total', #parents, 'succeeded', 0, 'failed', 0, 'policy', ARGV[5],
  'keep_ms', ARGV[7], 'created_ms', now}
if ARGV[8] ~= '' then
  record[#record + 1] = 'description'
  record[#record + 1] = ARGV[8]
end
for i, c in ipairs(callbacks) do
  record[#record + 1] = c.role
  record[#record + 1] = cmsgpack.pack({c.id, c.queue, c.priority, c.flow})
  local extra = {'join', wid}
  if #parents > 0 then
    extra[#extra + 1] = 'parents'
    extra[#extra + 1] = cmsgpack.pack(parents)
  end
  redis.call('DEL', KEYS[2 + i], RESQ_KEY.done(c.queue, c.id))  -- a finished job's id, reused
  redis.call('HSET', KEYS[2 + i], unpack(resq_job_fields({'envelope', c.envelope, 'task', c.task, 'queue', c.queue,
    'attempt', 0, 'enqueued_ms', now, 'status', 'deferred'}, c.priority, c.flow, extra)))
  resq_join_add(KEYS[2 + i], c.id, c.joins)
  resq_publish_lazy(channel, function() return resq_event('deferred', c.id, c.task, c.queue, 0, now, {join = wid}) end)
end
redis.call('HSET', KEYS[1], unpack(record))

local cause, cause_status
for _, p in ipairs(parents) do
  local key = RESQ_KEY.job(p[2], p[1])
  local f = redis.call('HMGET', key, 'status', 'joins')
  if RESQ_TERMINAL[f[1]] then
    redis.call('HSET', KEYS[2], p[1], f[1])
    redis.call('HINCRBY', KEYS[1], f[1] == 'succeeded' and 'succeeded' or 'failed', 1)
    if f[1] ~= 'succeeded' then cause, cause_status = p[1], f[1] end
  else
    redis.call('HSET', KEYS[2], p[1], 'pending')
    local ok, joins = pcall(cmsgpack.unpack, f[2] or '')
    if not (f[2] and ok and type(joins) == 'table') then joins = {} end
    joins[#joins + 1] = {wid, -1}
    redis.call('HSET', key, 'joins', cmsgpack.pack(joins))
  end
end
if ARGV[6] ~= '1' then resq_join_check(wid, now, channel, cause, cause_status) end
return {'ok'}
