-- KEYS: s l h. ARGV: grace (µs), lease (µs), ttl (ms), k, then k pairs (age in µs, permit id) of this
-- process's stamps, then its permit ids in flight. Puts them back (what is there stays) and holds
-- every grant for the grace, so that the other processes can put theirs back too. Returns the epoch.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.0f', x) end
local k = tonumber(ARGV[4])
for i = 0, k - 1 do
  redis.call('ZADD', KEYS[1], 'NX', f(now - tonumber(ARGV[5 + 2 * i])), ARGV[6 + 2 * i])
end
for i = 5 + 2 * k, #ARGV do redis.call('ZADD', KEYS[2], 'NX', f(now + tonumber(ARGV[2])), ARGV[i]) end
local g = now + tonumber(ARGV[1])
if g > tonumber(redis.call('HGET', KEYS[3], 'grace') or '0') then redis.call('HSET', KEYS[3], 'grace', f(g)) end
local epoch = redis.call('HGET', KEYS[3], 'epoch')
if not epoch then
  epoch = f(now)
  redis.call('HSET', KEYS[3], 'epoch', epoch)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return epoch
