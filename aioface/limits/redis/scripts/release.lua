-- KEYS: s l h. ARGV: permit id, counted (in flight until the answer), adaptive, first limit, ttl (ms),
-- µs between the answer and this call as the client measured it (monotonic: no clock skew).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  local at = now - math.max(0, tonumber(ARGV[6]))
  local was = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
  redis.call('ZADD', KEYS[1], string.format('%.0f', math.max(at, was)), ARGV[1])
end
if ARGV[3] == '1' then
  local limit = tonumber(ARGV[4])
  local a = tonumber(redis.call('HGET', KEYS[3], 'alimit') or limit)
  if a < limit then
    if redis.call('HINCRBY', KEYS[3], 'streak', 1) >= a then
      redis.call('HSET', KEYS[3], 'alimit', a + 1, 'streak', 0)
    end
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return 1
