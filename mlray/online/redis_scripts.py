"""The Lua scripts the Redis online store runs: the conditional row write and the state update.

Each runs atomically on the server, so no reader ever sees a half-applied write.
"""

# KEYS: the rows' keys. ARGV[1]: ttl in microseconds (0: none); then per key its value (16 bytes of
# event and available time, then the encoded features). Keeps the greater (event, available) time:
# one SET ... GET stores the row and returns the one it replaced, which is put back, with its own
# expiry, if it was newer (a backfill). The script is atomic, so no reader ever sees the older row.
# Returns {rows written, rows that were already stored identically}.
WRITE_LUA = """
local ttl = tonumber(ARGV[1])
local applied, same = 0, 0
local call, unpack, ceil = redis.call, struct.unpack, math.ceil
local function put(key, row, et, get)
  if ttl > 0 then
    if get then return call('SET', key, row, 'PXAT', ceil((et + ttl) / 1000) - 1, 'GET') end
    return call('SET', key, row, 'PXAT', ceil((et + ttl) / 1000) - 1)
  end
  if get then return call('SET', key, row, 'GET') end
  return call('SET', key, row)
end
for i = 1, #KEYS do
  local key, row = KEYS[i], ARGV[i + 1]
  local et, at = unpack('<i8i8', row)
  local old = put(key, row, et, true)
  if not old then
    applied = applied + 1
  elseif old == row then
    same = same + 1
  else
    local oet, oat = unpack('<i8i8', old)
    if oet > et or (oet == et and oat > at) then
      put(key, old, oet, false)
    else
      applied = applied + 1
    end
  end
end
return {applied, same}
"""

# KEYS[1]: a view's state hash. ARGV: newest, watermark (kept at their max; '' = leave), then
# materialized_at, version, last_applied (replaced; '' = leave).
STATE_LUA = """
local key = KEYS[1]
local names = {'newest', 'watermark', 'materialized_at', 'version', 'last_applied'}
for i = 1, 5 do
  local v = ARGV[i]
  if v ~= '' then
    local cur = redis.call('HGET', key, names[i])
    if i > 2 or (not cur) or tonumber(v) > tonumber(cur) then
      redis.call('HSET', key, names[i], v)
    end
  end
end
return 1
"""
