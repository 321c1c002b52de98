-- attach: make an existing job a member of a depends_on's join (its parent), in the job's slot: its end
-- will hand off to that join too (_workflow.lua). A job that ended already is not attached: its caller
-- counts its status into the join instead.
-- KEYS[1] job hash
-- ARGV[1] join id
-- Returns: 'attached', the job's status when it ended already, or false when it has no record.
local f = redis.call('HMGET', KEYS[1], 'status', 'joins')
if not f[1] then return false end
if RESQ_TERMINAL[f[1]] then return f[1] end
local ok, joins = pcall(cmsgpack.unpack, f[2] or '')
if not (f[2] and ok and type(joins) == 'table') then joins = {} end
for _, j in ipairs(joins) do
  if j[1] == ARGV[1] then return 'attached' end
end
joins[#joins + 1] = {ARGV[1], -1}
redis.call('HSET', KEYS[1], 'joins', cmsgpack.pack(joins))
return 'attached'
