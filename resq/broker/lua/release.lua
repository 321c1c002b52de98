-- release: give a leased job back to its queue (worker stopping, or its worker died).
-- KEYS[1] queue stream   KEYS[2] job hash   KEYS[3] dead zset   KEYS[4] done list   KEYS[5] history list
-- ARGV[1] group   ARGV[2] stream entry id   ARGV[3] job id   ARGV[4] now (ms)
-- ARGV[5] 'lost' (worker died: counts towards max) or 'returned' (handed back politely)
-- ARGV[6] max losses before the job is dead   ARGV[7] error (msgpack) used when it goes dead
-- ARGV[8] dead ttl (ms)   ARGV[9] dead max size   ARGV[10] job key prefix   ARGV[11] done key prefix
-- ARGV[12] history key prefix   ARGV[13] events channel
-- Returns: 'queued', 'dead', or 'gone' (the entry was no longer pending: its outcome was recorded elsewhere).
if resq_ack(KEYS[1], ARGV[1], ARGV[2]) == 0 then return 'gone' end
local status = redis.call('HGET', KEYS[2], 'status')
if not status or RESQ_TERMINAL[status] then return 'gone' end
if ARGV[5] == 'lost' and status == 'running' then
  local lost = redis.call('HINCRBY', KEYS[2], 'lost', 1)
  if lost >= tonumber(ARGV[6]) then
    redis.call('HSET', KEYS[2], 'status', 'dead', 'error', ARGV[7], 'finished_ms', ARGV[4])
    redis.call('HDEL', KEYS[2], 'entry')
    resq_note(KEYS[2], KEYS[5], ARGV[13], 'dead', ARGV[3], ARGV[4], {error = resq_error_text(ARGV[7])})
    resq_add_dead(KEYS[3], KEYS[2], KEYS[4], KEYS[5], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[8]),
      tonumber(ARGV[9]), ARGV[10], ARGV[11], ARGV[12])
    return 'dead'
  end
end
if ARGV[5] == 'returned' and status == 'running' then
  redis.call('HINCRBY', KEYS[2], 'attempt', -1)
end
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'queued', 'entry', entry)
resq_note(KEYS[2], KEYS[5], ARGV[13], 'enqueued', ARGV[3], ARGV[4], {from = ARGV[5]})
return 'queued'
