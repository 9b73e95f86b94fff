-- KEYS: s l q qe h m, and the store-wide marker 'live' (exists while the store has not lost its
-- state). ARGV: permit id, waiter id, lease, margin, stamp bound (-1: none), adaptive,
-- the epoch the caller last saw ('' if none), probe (1: the rates are not confirmed: granted only
-- when no request of the key is in flight in any process, within the windows, and held in flight
-- until its answer), meta ttl (ms), window count, then limit and period per window, then the grace
-- (µs) a lost or new state holds every grant for. Times in integer µs.
-- Replies: {1, limit, meta, epoch} granted; {0, wait, unknown, position, limit, epoch, window
-- holding it back longest (0: a 429 pause or none), and when probing the shared facts}; {3, epoch} the state is newer than the
-- caller's (Redis lost it): restore first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.0f', x) end
local pid, wid = ARGV[1], ARGV[2]
local lease, margin, bound = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = tonumber(ARGV[10])
local limits, periods, longest = {}, {}, 0
for i = 1, n do
  limits[i] = tonumber(ARGV[9 + 2 * i])
  periods[i] = tonumber(ARGV[10 + 2 * i])
  longest = math.max(longest, periods[i])
end
-- leases that ran out (their process died or stalled) become stamps at their end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', f(now), 'WITHSCORES')
for i = 1, #dead, 2 do redis.call('ZADD', KEYS[1], dead[i + 1], dead[i]) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now)) end
-- forget stamps no window can see any more (the longest window any caller asked for)
local h = redis.call('HMGET', KEYS[5], 'keep', 'pause', 'alimit', 'epoch', 'grace')
local keep = math.max(tonumber(h[1] or '0'), longest + margin)
redis.call('HSET', KEYS[5], 'keep', f(keep))
local epoch = h[4]
if not epoch then
  epoch = f(now)
  redis.call('HSET', KEYS[5], 'epoch', epoch)
  -- No state: new, idle long enough to expire, or lost (flushed, restarted empty). Only a loss
  -- can hide stamps of open windows, and a loss takes the store-wide marker too: then hold every
  -- grant until the live processes have put theirs back (their heartbeat), or the grace passed.
  if redis.call('EXISTS', KEYS[7]) == 0 then
    local g = now + tonumber(ARGV[11 + 2 * n])
    redis.call('HSET', KEYS[5], 'grace', f(g))
    h[5] = f(g)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', f(now - keep))
-- waiters that stopped asking
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', f(now))
for i = 1, #gone do redis.call('ZREM', KEYS[3], gone[i]) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', f(now)) end
local pause = math.max(tonumber(h[2] or '0'), tonumber(h[5] or '0'))
if ARGV[6] == '1' then limits[1] = math.min(limits[1], tonumber(h[3] or limits[1])) end
local ttl = math.ceil((keep + lease) / 1000) + 60000
local function expire()
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
if ARGV[7] ~= '' and ARGV[7] ~= epoch then
  expire()
  return {3, epoch}
end
local inflight = redis.call('ZCARD', KEYS[2])
local pos = redis.call('ZRANK', KEYS[3], wid)
if not pos then pos = redis.call('ZCARD', KEYS[3]) end
local counts, free = {}, nil
for i = 1, n do
  counts[i] = redis.call('ZCOUNT', KEYS[1], '(' .. f(now - periods[i] - margin), '+inf')
  local room = limits[i] - counts[i] - inflight
  if free == nil or room < free then free = room end
end
local probe = ARGV[8] == '1'
if probe and inflight > 0 then free = 0 end
if now >= pause and pos < free then
  if bound >= 0 and not probe then
    redis.call('ZADD', KEYS[1], f(now + bound), pid)
  else
    redis.call('ZADD', KEYS[2], f(now + lease), pid)
  end
  redis.call('ZREM', KEYS[3], wid)
  redis.call('ZREM', KEYS[4], wid)
  expire()
  redis.call('PEXPIRE', KEYS[6], ARGV[9])
  redis.call('SET', KEYS[7], '1', 'PX', ARGV[9])
  return {1, limits[1], redis.call('HGETALL', KEYS[6]), epoch}
end
-- wait: keep (or take) a place in the queue; how long until pos + 1 slots are free?
if not redis.call('ZSCORE', KEYS[3], wid) then
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[5], 'seq', 1), wid)
end
redis.call('ZADD', KEYS[4], f(now + lease), wid)
local wait, unknown, blocker = math.max(0, pause - now), 0, 0
if probe and inflight > 0 then unknown = 1 end
for i = 1, n do
  local over = counts[i] + inflight - limits[i] + 1 + pos
  if over > counts[i] then
    unknown = 1  -- only answers still in flight can free this window
  elseif over > 0 then
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. f(now - periods[i] - margin), '+inf',
                         'WITHSCORES', 'LIMIT', over - 1, 1)
    local w = tonumber(e[2]) + periods[i] + margin - now
    if w > wait then wait, blocker = w, i end
  end
end
expire()
if probe then  -- a confirmation another process shared may end the probing
  return {0, wait, unknown, pos, limits[1], epoch, blocker, redis.call('HGETALL', KEYS[6])}
end
return {0, wait, unknown, pos, limits[1], epoch, blocker}
