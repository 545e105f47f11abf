"""The Lua scripts: each step on the shared Redis is one atomic script.

Keys (``P`` = ``{redis.key_prefix}cluster:{cluster.name}:``)::

    P members         sorted set: instance -> heartbeat expiry (Redis server time, ms)
    P lease:{shard}   string "{token}:{instance}", PX lease_ttl; absent = free
    P token:{shard}   counter: INCR on every acquisition, never reset

Times are Redis's own (``TIME``), so the replicas' clocks never need to agree.
"""

from __future__ import annotations

__all__ = ["FENCED_SET", "HEARTBEAT", "SYNC_LEASES"]

# KEYS[1] members. ARGV: instance, ttl ms, "join" | "leave" | "read".
# Returns {now_ms, member1, expiry1, member2, expiry2, ...} for the live members.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == 'join' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
elseif ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local out = {tostring(now)}
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #live do out[#out + 1] = live[i] end
return out
"""

# KEYS: n lease keys, then their n token keys. ARGV: instance, ttl ms, ops, then the n
# lease values this replica believes it holds ('' for none). ops has one letter per shard:
#   c  claim: take the lease if free, renew it if it is the one we hold; a lease with our
#      instance but another token (an earlier life of this instance) is taken anew
#   k  keep: renew only if it is the one we hold (never acquire)
#   r  release: delete only if it is the one we hold
#   -  read only
# Returns, per shard, the lease value after the step ('' if free) and its PTTL in ms.
SYNC_LEASES = """
local n = #KEYS / 2
local me, ttl, ops = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
for i = 1, n do
  local lease, op, believed = KEYS[i], string.sub(ops, i, i), ARGV[3 + i]
  local value = redis.call('GET', lease)
  local ours = value and value == believed
  if op == 'c' or op == 'k' then
    if ours then
      redis.call('PEXPIRE', lease, ttl)
    elseif op == 'c' then
      local mine = value and string.sub(value, string.find(value, ':', 1, true) + 1) == me
      if not value or mine then
        value = redis.call('INCR', KEYS[n + i]) .. ':' .. me
        redis.call('SET', lease, value, 'PX', ttl)
      end
    end
  elseif op == 'r' and ours then
    redis.call('DEL', lease)
    value = false
  end
  out[#out + 1] = value or ''
  out[#out + 1] = value and redis.call('PTTL', lease) or -2
end
return out
"""

# KEYS[1] the shard's lease, KEYS[2..] state keys. ARGV[1] the writer's lease value
# ("{token}:{instance}"), ARGV[2..] the values. Writes all or nothing; 1 if written, 0 if
# the lease is no longer the writer's (expired, or taken by a newer owner).
FENCED_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
return 1
"""
