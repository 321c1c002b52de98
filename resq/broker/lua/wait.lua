-- wait: a caller of result() announces that it waits for the job's end (so the final transition wakes it
-- through the done list); returns the job's status.
-- KEYS[1] job hash
-- Returns: the status, or false when the job is unknown (then nothing is written).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if not RESQ_TERMINAL[status] then redis.call('HSET', KEYS[1], 'waiting', 1) end
return status
