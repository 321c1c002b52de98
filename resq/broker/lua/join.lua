-- join: open a join (_workflow.lua): the record of a chord, a batch or a depends_on, open until join_close
-- (its members register meanwhile: join_add, or here for a depends_on's parents). Its callbacks exist
-- already, as deferred jobs in their queues (defer.lua); the join keeps a reference to each.
-- KEYS[1] join hash   KEYS[2] members hash   KEYS[3] results hash
-- ARGV[1] join id   ARGV[2] now (ms)   ARGV[3] kind ('chord', 'batch', 'deps')   ARGV[4] policy for a failed
-- member ('fail', 'cancel', 'run', 'wait')   ARGV[5] keep (ms: how long the record stays once every member
-- ended)   ARGV[6] description   ARGV[7] the number of callbacks, then per callback (5 each): role
-- ('success' or 'complete'), id, queue, priority, flow; then the members to register now (a depends_on's
-- parents)
-- Returns: 1.
local n = tonumber(ARGV[7])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local record = {'kind', ARGV[3], 'open', '1', 'total', 0, 'succeeded', 0, 'failed', 0, 'policy', ARGV[4],
  'keep_ms', ARGV[5], 'created_ms', ARGV[2]}
if ARGV[6] ~= '' then
  record[#record + 1] = 'description'
  record[#record + 1] = ARGV[6]
end
for i = 0, n - 1 do
  local a = 8 + 5 * i
  record[#record + 1] = ARGV[a]
  record[#record + 1] = cmsgpack.pack({ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]})
end
redis.call('HSET', KEYS[1], unpack(record))
local members = {}
for i = 8 + 5 * n, #ARGV do members[#members + 1] = ARGV[i] end
resq_join_add(nil, KEYS[1], KEYS[2], members)
return 1
