"""Scripts that read the journal in one round trip (a read that follows ids from one key to the next would
otherwise take one per hop), and the two small writes of the suppression list and the lane controls."""

from __future__ import annotations

from typing import Final

from broadcaster.store.redis.lua_shared import SHARED

DELIVERIES: Final = (
    SHARED
    + r"""
-- ARGV: 2 update id, 3 incident id, 4 open only ('1'). Returns, as JSON, each delivery's row followed by its
-- seq (acceptance order), in no particular order.
local ids = {}
local function add(list) for _, id in ipairs(list) do ids[#ids + 1] = id end end
if ARGV[2] ~= '' then
  add(redis.call('LRANGE', P .. 'update:' .. ARGV[2] .. ':deliveries', 0, -1))
elseif ARGV[3] ~= '' then
  add(redis.call('LRANGE', incident_key(ARGV[3]) .. ':deliveries', 0, -1))
elseif ARGV[4] == '1' then -- the deliveries of every plan with any open, each plan's once
  local seen = {}
  for _, channel in ipairs(redis.call('SMEMBERS', P .. 'channels')) do
    for _, ref in ipairs(redis.call('ZRANGE', channel_key(channel, 'open'), 0, -1)) do
      local update_id = plan_of(ref).update_id
      if not seen[update_id] then
        seen[update_id] = true
        add(redis.call('LRANGE', P .. 'update:' .. update_id .. ':deliveries', 0, -1))
      end
    end
  end
else
  for _, incident in ipairs(redis.call('ZRANGE', P .. 'incidents:recent', 0, -1)) do
    add(redis.call('LRANGE', incident_key(incident) .. ':deliveries', 0, -1))
  end
end
local rows = {}
for _, id in ipairs(ids) do
  local d = facts(id)
  local open = d.state == 'pending' or d.state == 'in_flight'
  if (ARGV[3] == '' or d.incident_id == ARGV[3]) and (ARGV[4] ~= '1' or open) then
    local found = row_of(d)
    found[#ROW + 2] = d.seq
    rows[#rows + 1] = found
  end
end
return cjson.encode(rows)
"""
)

INCIDENTS: Final = r"""
-- ARGV: 1 prefix, 2 index ('recent', 'open': the latest updated first; 'due': by next update, then id),
-- 3 at most how many (a negative number: all, as SQLite's LIMIT), 4 for 'due', the latest next update to
-- include. Returns the incidents' JSON.
local P = ARGV[1]
local index = P .. 'incidents:' .. ARGV[2]
local limit = tonumber(ARGV[3])
if limit == 0 then return {} end
local ids
if ARGV[2] == 'due' then
  ids = redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[4], 'LIMIT', 0, math.max(limit, -1))
else
  ids = redis.call('ZREVRANGE', index, 0, limit < 0 and -1 or limit - 1)
end
local found = {}
for _, id in ipairs(ids) do
  local incident = redis.call('GET', P .. 'incident:' .. id)
  if incident then found[#found + 1] = incident end
end
return found
"""

HISTORIES: Final = r"""
-- ARGV: 1 prefix, 2 'one' (3: the incident id) or 'site' (3: how many recently updated incidents besides the
-- open ones, '' for every incident). Returns {incident JSON, {update JSON, oldest first}} per incident found.
local P = ARGV[1]
local ids = {}
if ARGV[2] == 'one' then
  ids = {ARGV[3]}
elseif ARGV[3] == '' then
  ids = redis.call('ZRANGE', P .. 'incidents:recent', 0, -1)
else
  local seen = {}
  local function add(list)
    for _, id in ipairs(list) do
      if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
    end
  end
  add(redis.call('ZRANGE', P .. 'incidents:open', 0, -1))
  local recent = tonumber(ARGV[3])
  if recent > 0 then add(redis.call('ZREVRANGE', P .. 'incidents:recent', 0, recent - 1)) end
end
local found = {}
for _, id in ipairs(ids) do
  local incident = redis.call('GET', P .. 'incident:' .. id)
  if incident then
    local keys = {}
    for i, update_id in ipairs(redis.call('LRANGE', P .. 'incident:' .. id .. ':updates', 0, -1)) do
      keys[i] = P .. 'update:' .. update_id
    end
    local updates = {}
    for start = 1, #keys, 1000 do
      for _, update in ipairs(redis.call('MGET', unpack(keys, start, math.min(start + 999, #keys)))) do
        updates[#updates + 1] = update
      end
    end
    found[#found + 1] = {incident, updates}
  end
end
return found
"""

ATTEMPTS: Final = r"""
-- ARGV: 1 prefix, 2 delivery id. Returns {logged attempts (JSON each), state, attempts, finished_at}.
local P = ARGV[1]
local logged = redis.call('LRANGE', P .. 'attempts:' .. ARGV[2], 0, -1)
local state, attempts, finished_at = unpack(redis.call('HMGET', P .. 'delivery:' .. ARGV[2], 'state', 'attempts',
  'finished_at'))
return {logged, state, attempts, finished_at}
"""

BACKLOG: Final = r"""
-- ARGV: 1 prefix. Returns {channel, open deliveries, oldest created_at} per channel with any open: from the
-- plans with open deliveries, oldest first, and how many each has open.
local P = ARGV[1]
local backlog = {}
for _, channel in ipairs(redis.call('SMEMBERS', P .. 'channels')) do
  local open = redis.call('ZRANGE', P .. 'channel:' .. channel .. ':open', 0, -1, 'WITHSCORES')
  local count, oldest = 0, false
  for i = 1, #open, 2 do
    local left = tonumber(redis.call('HGET', P .. 'plan:' .. open[i], 'open') or '0')
    if left > 0 then
      count = count + left
      oldest = oldest or open[i + 1]
    end
  end
  if count > 0 then backlog[#backlog + 1] = {channel, count, oldest} end
end
return backlog
"""

SUPPRESS: Final = r"""
-- ARGV: 1 prefix, then address, entry (JSON) pairs. Returns how many addresses were not suppressed yet.
local added = 0
for i = 2, #ARGV, 2 do added = added + redis.call('HSETNX', ARGV[1] .. 'suppressions', ARGV[i], ARGV[i + 1]) end
return added
"""

SET_PAUSED: Final = r"""
-- ARGV: 1 prefix, 2 channel, 3 target ('' for the whole channel), 4 paused ('1'), 5 the control (JSON).
-- The controls hash is what `controls` lists; the channel's paused set is what claims and handoffs read.
local P = ARGV[1]
redis.call('HSET', P .. 'controls', ARGV[2] .. '\t' .. ARGV[3], ARGV[5])
local paused = P .. 'channel:' .. ARGV[2] .. ':paused'
if ARGV[4] == '1' then redis.call('SADD', paused, ARGV[3]) else redis.call('SREM', paused, ARGV[3]) end
return 0
"""
