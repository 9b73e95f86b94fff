-- KEYS: l h. ARGV: lease (µs), ttl (ms), then permit ids still in flight. Leases already given up stay so.
-- Returns the state's epoch ('' if there is none: Redis lost it).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local exp = string.format('%.0f', now + tonumber(ARGV[1]))
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i]) end
for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return redis.call('HGET', KEYS[2], 'epoch') or ''
