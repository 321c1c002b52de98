-- Workflows (resq/canvas.py, resq/broker/handoff.py, docs/workflows.md): joins, and the hand-off that settles
-- them. A join is the record that releases callbacks once its members have ended: a chord's callback
-- (members: the chord's jobs), a batch's on_success and on_complete (members: every job enqueued in the
-- batch, nested ones included) and a job enqueued with depends_on (members: its parents). Its keys share
-- the workflow's hash tag {ns:wf:<id>}: the join hash (kind, open, total, succeeded, failed, policy, the
-- callbacks, keep_ms, and per decided callback `fired:<role>` and `action:<role>`), the members hash (job
-- id -> its status, 'pending' until it ends) and, for a chord, the results hash (index -> the member's
-- result as stored, `<index>:id` -> the member's id).
--
-- A member's hash holds `joins`, a msgpack list of {join id, index} (index -1: no result kept). A job's
-- queue and its joins are in different slots (on a Redis Cluster, often on different nodes), so no script
-- touches both: every script that ends a job writes a hand-off entry into its queue's hand-off hash in
-- the same step as the end (resq_hand_off), and returns it with its reply (resq_handed). The caller then
-- applies it to each join (settle.lua, in the join's slot), runs the callbacks the join decided
-- (deferred.lua, in the callback's queue's slot) and deletes the entry last (handed_off.lua). Each step is
-- idempotent, so an entry left by a process that died on the way is applied again by the reaper: a
-- callback is released once, never lost and never twice.

-- The hand-off entry this script wrote (false: none), returned with its reply by resq_handed.
local RESQ_HANDOFF = false

-- Queue slot. A job `id` ended in `status`: write its hand-off entry into `key` (its queue's hand-off
-- hash) when it belongs to joins (`joins`, its hash's field: false, nil or '' when none), made a next step
-- that does (a chain's: `next_id`, `next_joins`) or leaves its next step in another queue to the hand-off
-- (`step`: {queue, envelope, task, priority, flow}, packed). The entry is {joins, status, result, now,
-- next id, next joins, step}, the result kept only for a chord member that succeeded.
local function resq_hand_off(key, joins, id, status, result, now, next_id, next_joins, step)
  local ok, list = pcall(cmsgpack.unpack, joins or '')
  if not (joins and joins ~= '' and ok and type(list) == 'table') then list = {} end
  local ok2, later = pcall(cmsgpack.unpack, next_joins or '')
  if not (next_joins and next_joins ~= '' and ok2 and type(later) == 'table') then later = {} end
  if #list == 0 and #later == 0 and not step then return end
  local kept = ''
  if status == 'succeeded' and result then
    for _, j in ipairs(list) do
      if tonumber(j[2] or -1) >= 0 then kept = result end
    end
  end
  RESQ_HANDOFF = cmsgpack.pack({list, status, kept, tonumber(now), next_id or '', later, step or ''})
  redis.call('HSET', key, id, RESQ_HANDOFF)
end

-- The reply of a script that may have handed off: {'resq:handoff', reply, entry} when it did.
local function resq_handed(reply)
  if RESQ_HANDOFF then return {'resq:handoff', reply, RESQ_HANDOFF} end
  return reply
end

-- Queue slot. Keep a new job's joins in its hash (its hand-off names them when it ends).
local function resq_keep_joins(job_key, joins)
  if joins and joins ~= '' then redis.call('HSET', job_key, 'joins', joins) end
end

-- Join slot (jk join hash, mk members hash, rk results hash). The join as one HMGET reads it (nil: no such
-- join, or its record expired); the helpers below keep this copy up to date as they write.
local function resq_join_read(jk)
  local f = redis.call('HMGET', jk, 'kind', 'open', 'total', 'succeeded', 'failed', 'policy', 'success', 'complete',
    'keep_ms', 'action:complete', 'reason:complete', 'action:success', 'reason:success')
  if not f[1] then return nil end
  return {kind = f[1], open = f[2], total = tonumber(f[3] or '0'), succeeded = tonumber(f[4] or '0'),
    failed = tonumber(f[5] or '0'), policy = f[6] or 'fail', success = f[7], complete = f[8], keep = f[9] or '0',
    action = {complete = f[10], success = f[12]}, reason = {complete = f[11] or '', success = f[13] or ''}}
end

-- Join slot. Register members not registered yet ('pending'); returns the ids registered now.
local function resq_join_add(j, jk, mk, ids)
  local added = {}
  for _, id in ipairs(ids) do
    if redis.call('HSETNX', mk, id, 'pending') == 1 then added[#added + 1] = id end
  end
  if #added > 0 then
    redis.call('HINCRBY', jk, 'total', #added)
    if j then j.total = j.total + #added end
  end
  return added
end

-- Join slot. Count member `id` ended in `status` (a terminal one); a member counted already with the same
-- status is not counted again, a dead member retried that succeeds is counted anew, and one that was not
-- registered yet (a chain's step that ended before the hand-off of the step before it) is registered now.
local function resq_join_count(j, jk, mk, rk, id, status, index, result)
  local prev = redis.call('HGET', mk, id)
  if prev == status then return end
  local function add(field, by)
    redis.call('HINCRBY', jk, field, by)
    j[field] = j[field] + by
  end
  if not prev then
    add('total', 1)
  elseif prev ~= 'pending' then
    add(prev == 'succeeded' and 'succeeded' or 'failed', -1)
  end
  redis.call('HSET', mk, id, status)
  add(status == 'succeeded' and 'succeeded' or 'failed', 1)
  if index >= 0 and status == 'succeeded' and result ~= '' then
    redis.call('HSET', rk, index, result, index .. ':id', id)
  end
end

-- Join slot. Decide the join once per callback (its fired:<role>, action:<role> and reason:<role>
-- fields): on_complete when every member ended; the success callback when every member succeeded, or by
-- the policy when one did not ('run': once every member ended; 'cancel', 'fail': at once; 'wait': only if
-- the failed members are retried and succeed). `cause` names the member that just ended, for the reason
-- of an ended callback. Returns every decided callback (those decided before too: the caller's run of
-- them is idempotent, and one that died on the way is run again), each {action, id, queue, priority,
-- flow, reason, keep_ms} with action 'release', 'cancel' or 'fail'.
local function resq_join_decide(j, jk, mk, rk, wid, now, cause, cause_status)
  if not j then return {} end
  if j.open ~= '1' then
    local ended = j.succeeded + j.failed >= j.total
    local function fire(role, action, reason)
      if j.action[role] then return end
      redis.call('HSET', jk, 'fired:' .. role, now, 'action:' .. role, action, 'reason:' .. role, reason)
      j.action[role], j.reason[role] = action, reason
    end
    if j.complete and ended then fire('complete', 'release', '') end
    if j.success then
      if j.succeeded >= j.total or (j.policy == 'run' and ended) then
        fire('success', 'release', '')
      elseif j.failed > 0 and (j.policy == 'cancel' or j.policy == 'fail') then
        fire('success', j.policy, string.format('%s %s of %s %s ended %s', j.kind == 'deps' and 'parent' or 'member',
          tostring(cause or '?'), j.kind, wid, tostring(cause_status or 'failed')))
      end
    end
    if ended and tonumber(j.keep) > 0 then
      for _, key in ipairs({jk, mk, rk}) do redis.call('PEXPIRE', key, j.keep) end
    end
  end
  local decided = {}
  for _, role in ipairs({'complete', 'success'}) do
    local ok, r = pcall(cmsgpack.unpack, j[role] or '')
    if j[role] and j.action[role] and ok and type(r) == 'table' then
      decided[#decided + 1] = {j.action[role], r[1], r[2], tostring(r[3] or '0'), r[4] or '', j.reason[role], j.keep}
    end
  end
  return decided
end
