-- resque_take: move jobs from the head of Resque-family queue lists into a resq worker's in-flight hash,
-- atomically (a job is in its list or in the hash, never nowhere: Resque's LPOP loses the job of a worker
-- that dies before it runs it). Each job taken gets the next number of the namespace's sequence: its
-- field in the hash, and the id of the resq job made from it. Queues are read in the order given, and a
-- queue whose resq queue already holds `most waiting` entries is left alone (its backlog stays in the
-- Resque list, where their tools see it and their workers may take it).
-- KEYS[1] in-flight hash of this worker   KEYS[2] sequence counter   KEYS[3] zset of the in-flight hashes
-- (member: the worker's id, score: when it counts as dead, ms)   then for queue i (from 1):
-- KEYS[3i + 1] its Resque list   KEYS[3i + 2] its resq stream (priority 0)   KEYS[3i + 3] its front stream
-- ARGV[1] most jobs to take   ARGV[2] the worker's id   ARGV[3] when the worker counts as dead (ms)
-- ARGV[4] most waiting   ARGV[4 + i] the name of queue i
-- Returns: {number, queue, payload, ...} of the jobs taken, in order
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
local function waiting(key)
  if redis.call('TYPE', key).ok ~= 'stream' then return 0 end
  return redis.call('XLEN', key)
end
local most, room_for = tonumber(ARGV[1]), tonumber(ARGV[4])
local popped = {}
for i = 1, (#KEYS - 3) / 3 do
  local list = KEYS[3 * i + 1]
  local room = math.min(most - #popped, room_for - waiting(KEYS[3 * i + 2]) - waiting(KEYS[3 * i + 3]))
  if room > 0 and redis.call('TYPE', list).ok == 'list' then
    for _, payload in ipairs(redis.call('LPOP', list, room) or {}) do
      popped[#popped + 1] = {ARGV[4 + i], payload}
    end
  end
end
if #popped == 0 then return {} end
local first = redis.call('INCRBY', KEYS[2], #popped) - #popped
local taken, fields = {}, {}
for j, job in ipairs(popped) do
  local number = first + j
  fields[#fields + 1] = number
  fields[#fields + 1] = job[1] .. '\n' .. job[2]
  taken[#taken + 1] = number
  taken[#taken + 1] = job[1]
  taken[#taken + 1] = job[2]
end
redis.call('HSET', KEYS[1], unpack(fields))
return taken
