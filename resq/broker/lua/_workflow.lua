-- Workflows (resq/canvas.py, docs/workflows.md): joins. A join is the record that releases callbacks once
-- its members have ended: a chord's callback (members: the chord's jobs), a batch's on_success and
-- on_complete (members: every job enqueued in the batch, nested ones included) and a job enqueued with
-- depends_on (members: its parents). Its keys share the workflow's hash tag {ns:wf:<id>} (RESQ_KEY, made
-- by resq/broker/keys.py): the join hash (kind, open, total, succeeded, failed, policy, the callbacks,
-- keep_ms), the members hash (job id -> its status, 'pending' until it ends) and, for a chord, the results
-- hash (index -> the member's result as stored, `<index>:id` -> the member's id).
--
-- A member's hash holds `joins`, a msgpack list of {join id, index} (index -1: no result kept). Every
-- script that ends a job calls resq_settle in the same step as the end, so a callback is released once,
-- never lost and never twice, however many workers end members at the same moment. A callback waits as a
-- `deferred` job (its envelope in its hash) until its join releases it into its queue, or ends it without
-- running (a failed member, by the join's policy), which settles the joins that callback belongs to in
-- turn.
--
-- On one Redis these helpers reach the keys of the joins and callbacks by name (RESQ_KEY); a workflow
-- spread over Redis Cluster nodes is released by a hand-off instead (docs/workflows.md#redis-cluster).

local resq_settle

-- A ref of a callback, as the join script stores it: {id, queue, priority, flow}.
local function resq_ref(packed)
  local ok, r = pcall(cmsgpack.unpack, packed)
  if ok and type(r) == 'table' then return r end
  return nil
end

-- Register a new job as a member of each join in `joins` (packed, '' = none) and keep the list in its hash.
local function resq_join_add(job_key, id, joins)
  if joins == nil or joins == '' then return end
  local ok, list = pcall(cmsgpack.unpack, joins)
  if not ok or type(list) ~= 'table' then return end
  redis.call('HSET', job_key, 'joins', joins)
  for _, j in ipairs(list) do
    if redis.call('HSETNX', RESQ_KEY.members(j[1]), id, 'pending') == 1 then
      redis.call('HINCRBY', RESQ_KEY.join(j[1]), 'total', 1)
    end
  end
end

-- Release a deferred callback into its queue (nothing when it is no longer deferred: cancelled meanwhile).
local function resq_release_deferred(r, now, channel)
  local id, q, priority, flow = r[1], r[2], tostring(r[3] or '0'), r[4] or ''
  local key = RESQ_KEY.job(q, id)
  local f = redis.call('HMGET', key, 'status', 'task', 'history')
  if f[1] ~= 'deferred' then return end
  local stream = priority == '0' and RESQ_KEY.stream0(q) or RESQ_KEY.stream(q, priority)
  local entry = resq_add_entry(stream, id, flow)
  if priority ~= '0' and redis.call('SADD', RESQ_KEY.levels(q), priority) == 1 then
    redis.pcall('XGROUP', 'CREATE', stream, RESQ_GROUP, '0')
  end
  local e = resq_event('enqueued', id, f[2], q, 0, now, {released = 1})
  redis.call('HSET', key, 'status', 'queued', 'entry', entry, 'enqueued_ms', now, 'history', resq_note(f[3], channel, e))
end

-- End a deferred callback without running it, as the join's policy says when a member failed: 'cancel'
-- (cancelled) or 'fail' (dead, error ParentFailed); then settle the joins it belongs to.
local function resq_end_deferred(r, policy, reason, now, channel, keep_ms)
  local id, q = r[1], r[2]
  local key = RESQ_KEY.job(q, id)
  local f = redis.call('HMGET', key, 'status', 'task', 'history', 'waiting', 'joins')
  if f[1] ~= 'deferred' then return end
  local status = policy == 'cancel' and 'cancelled' or 'dead'
  local e = resq_event(status, id, f[2], q, 0, now, {reason = reason})
  local history = resq_note(f[3], channel, e)
  if status == 'cancelled' then
    redis.call('HSET', key, 'status', status, 'finished_ms', now, 'cancel_reason', reason, 'history', history)
  else
    local err = cmsgpack.pack({type = 'ParentFailed', message = reason, traceback = ''})
    redis.call('HSET', key, 'status', status, 'error', err, 'finished_ms', now, 'history', history)
    redis.call('ZADD', RESQ_KEY.dead(q), now, id)
  end
  resq_finish(key, RESQ_KEY.done(q, id), keep_ms, f[4])
  resq_settle(f[5], id, status, nil, now, channel)
end

-- Look whether join `wid` is decided, and release or end its callbacks once (the fired:* fields): on_complete
-- when every member ended; the success callback when every member succeeded, or by the policy when one
-- did not ('run': once every member ended; 'cancel', 'fail': at once; 'wait': only if the failed members
-- are retried and succeed). `cause` names the member that just ended, for the reason of an ended callback.
local function resq_join_check(wid, now, channel, cause, cause_status)
  local jk = RESQ_KEY.join(wid)
  local j = redis.call('HMGET', jk, 'open', 'total', 'succeeded', 'failed', 'policy', 'success', 'complete',
    'keep_ms', 'kind')
  if j[1] == '1' or not j[2] then return end
  local total, succeeded, failed = tonumber(j[2]), tonumber(j[3] or '0'), tonumber(j[4] or '0')
  local ended, keep = succeeded + failed >= total, tonumber(j[8] or '0')
  local complete, success = j[7] and resq_ref(j[7]), j[6] and resq_ref(j[6])
  if complete and ended and redis.call('HSETNX', jk, 'fired:complete', now) == 1 then
    resq_release_deferred(complete, now, channel)
  end
  if success then
    local policy = j[5] or 'fail'
    if succeeded >= total or (policy == 'run' and ended) then
      if redis.call('HSETNX', jk, 'fired:success', now) == 1 then resq_release_deferred(success, now, channel) end
    elseif failed > 0 and (policy == 'cancel' or policy == 'fail') then
      if redis.call('HSETNX', jk, 'fired:success', now) == 1 then
        local reason = string.format('%s %s of %s %s ended %s', j[9] == 'deps' and 'parent' or 'member',
          tostring(cause or '?'), j[9] or 'join', wid, tostring(cause_status or 'failed'))
        resq_end_deferred(success, policy, reason, now, channel, keep)
      end
    end
  end
  if ended and keep > 0 then
    for _, key in ipairs({jk, RESQ_KEY.members(wid), RESQ_KEY.results(wid)}) do redis.call('PEXPIRE', key, keep) end
  end
end

-- A job ended in `status` (a terminal one): count it in each join of `joins` (its hash's field, false or
-- nil when it belongs to none), keep a chord member's result, and decide the joins. A member counted
-- already with the same status is not counted again; a dead member retried that succeeds is counted anew.
resq_settle = function(joins, id, status, result, now, channel)
  if not joins then return end
  local ok, list = pcall(cmsgpack.unpack, joins)
  if not ok or type(list) ~= 'table' then return end
  for _, j in ipairs(list) do
    local wid, index = j[1], tonumber(j[2] or -1)
    local mk = RESQ_KEY.members(wid)
    local prev = redis.call('HGET', mk, id)
    if prev and prev ~= status then
      local jk = RESQ_KEY.join(wid)
      redis.call('HSET', mk, id, status)
      if prev ~= 'pending' then redis.call('HINCRBY', jk, prev == 'succeeded' and 'succeeded' or 'failed', -1) end
      redis.call('HINCRBY', jk, status == 'succeeded' and 'succeeded' or 'failed', 1)
      if index >= 0 and status == 'succeeded' and result then
        redis.call('HSET', RESQ_KEY.results(wid), index, result, index .. ':id', id)
      end
      resq_join_check(wid, tonumber(now), channel, id, status)
    end
  end
end
