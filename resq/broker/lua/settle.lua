-- settle: apply a member's hand-off entry to one of its joins (_workflow.lua), in the join's slot: count
-- its end, keep a chord member's result, and decide the join. Applied twice, it counts nothing twice.
-- KEYS[1] join hash   KEYS[2] members hash   KEYS[3] results hash
-- ARGV[1] join id   ARGV[2] now (ms)   ARGV[3] the member that ended ('' = none)   ARGV[4] its status
-- ARGV[5] its index in the join (-1: no result kept)   ARGV[6] its result as stored ('' = none)
-- ARGV[7..] members to register first (a chain's next step, made by the step that ended)
-- Returns: the decided callbacks (resq_join_decide), none when the join is gone (its record expired).
local j = resq_join_read(KEYS[1])
if not j then return {} end
local later = {}
for i = 7, #ARGV do later[#later + 1] = ARGV[i] end
resq_join_add(j, KEYS[1], KEYS[2], later)
if ARGV[3] ~= '' then
  resq_join_count(j, KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6])
end
return resq_join_decide(j, KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4])
