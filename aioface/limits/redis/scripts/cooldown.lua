-- KEYS: h. ARGV: seconds (µs), adaptive, first limit, ttl (ms). Several 429s from one burst halve once.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'pause') or '0')
if untl > cur then redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', untl)) end
if ARGV[2] == '1' and now >= cur then
  local a = tonumber(redis.call('HGET', KEYS[1], 'alimit') or ARGV[3])
  redis.call('HSET', KEYS[1], 'alimit', math.max(1, math.floor(a / 2)), 'streak', 0)
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), math.ceil(tonumber(ARGV[1]) / 1000) + tonumber(ARGV[4])))
return 1
