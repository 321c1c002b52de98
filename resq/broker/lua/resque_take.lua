-- resque_take: move jobs from the head of Resque-family queue lists into a resq worker's in-flight hash,
-- atomically (a job is in its list or in the hash, never nowhere: Resque's LPOP loses the job of a worker
-- that dies before it runs it). Each job taken gets the next number of the namespace's sequence: its
-- field in the hash, and the id of the resq job made from it. Queues are read in the order given.
-- KEYS[1] in-flight hash of this worker   KEYS[2] sequence counter   KEYS[3] zset of the in-flight hashes
-- (member: the worker's id, score: when it counts as dead, ms)   KEYS[3 + i] Resque list of queue i
-- ARGV[1] most jobs to take   ARGV[2] the worker's id   ARGV[3] when the worker counts as dead (ms)
-- ARGV[3 + i] the name of queue i
-- Returns: {number, queue, payload, ...} of the jobs taken, in order
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
local taken, left = {}, tonumber(ARGV[1])
for i = 4, #KEYS do
  if left <= 0 then break end
  if redis.call('TYPE', KEYS[i]).ok == 'list' then
    local jobs = redis.call('LPOP', KEYS[i], left)
    for _, payload in ipairs(jobs or {}) do
      local number = redis.call('INCR', KEYS[2])
      redis.call('HSET', KEYS[1], number, ARGV[i] .. '\n' .. payload)
      taken[#taken + 1] = number
      taken[#taken + 1] = ARGV[i]
      taken[#taken + 1] = payload
      left = left - 1
    end
  end
end
return taken
