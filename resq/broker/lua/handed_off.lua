-- handed_off: delete a hand-off entry once it was applied to every join (resq/broker/handoff.py), unless
-- the job wrote a newer one meanwhile (a dead job retried that ended again).
-- KEYS[1] the queue's hand-off hash
-- ARGV[1] job id   ARGV[2] the entry as applied
-- Returns: 1 when deleted, 0 otherwise.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
