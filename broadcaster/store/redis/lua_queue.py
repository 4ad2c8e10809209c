"""The delivery queue's scripts: claiming, recording, releasing, renewing and recovering leases, progress,
expiry and requeueing. Each is the SHARED prelude and a body; ARGV[1] is always the key prefix, and times
are the decimal strings records.number writes."""

from __future__ import annotations

from typing import Final

from broadcaster.store.redis.lua_shared import SHARED

CLAIM: Final = (
    SHARED
    + r"""
-- ARGV: 2 channel, 3 ordering, 4 owner, 5 limit, 6 now, 7 lease until, 8 sweep ('1'), 9 outcomes to record
-- (JSON), 10 targets to skip (JSON), 11 updates to limit the lease to (JSON, '' for any), 12 updates whose
-- history the caller knows (JSON). Returns, as JSON: [claimed [row, thread parent, progress], expired rows,
-- superseded rows, [update id, history] for each update leased that the caller does not know].
local channel, ordering, owner = ARGV[2], ARGV[3], ARGV[4]
local limit, now, lease_until = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local at = tonumber(now)
record(owner, cjson.decode(ARGV[9]), now)
local expired, superseded, claimed, views = {}, {}, {}, {}
local function reply() return cjson.encode({claimed, expired, superseded, views}) end
if ARGV[8] == '1' then
  expired = expire_channel(channel, now)
  prune_due(now)
end
if ordering == 'latest_only' then superseded = supersede_stale(channel, now) end
local paused = channel_key(channel, 'paused')
if limit <= 0 or redis.call('SISMEMBER', paused, '') == 1 then return reply() end

-- What has come due moves from the waiting set (by time) to the ready set (by acceptance order).
local ready, waiting = channel_key(channel, 'ready'), channel_key(channel, 'waiting')
local due = redis.call('ZRANGEBYSCORE', waiting, '-inf', now)
if #due > 0 then
  local by_seq = {}
  for _, id in ipairs(due) do
    by_seq[#by_seq + 1] = redis.call('HGET', delivery_key(id), 'seq')
    by_seq[#by_seq + 1] = id
  end
  for start = 1, #by_seq, 1000 do redis.call('ZADD', ready, unpack(by_seq, start, math.min(start + 999, #by_seq))) end
  redis.call('ZREMRANGEBYSCORE', waiting, '-inf', now)
end

-- Skipped: the caller's targets, and the journal's paused ones (a lane's own view of them may be a poll behind).
local skip = {}
for _, target in ipairs(cjson.decode(ARGV[10])) do skip[target] = true end
for _, target in ipairs(redis.call('SMEMBERS', paused)) do skip[target] = true end
-- Due, unexpired and not skipped (the ready set holds what was due when admitted; a claim by a clock behind
-- that one's may see it as not due yet).
local function eligible(d)
  return d.state == 'pending' and tonumber(d.not_before) <= at and tonumber(d.expires_at) > at and not skip[d.target]
end

local chosen = {}
if ARGV[11] == '' then
  local offset, step = 0, math.max(limit * 2, 100)
  while #chosen < limit do
    local ids = redis.call('ZRANGE', ready, offset, offset + step - 1)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local d = facts(id)
      if eligible(d) then
        chosen[#chosen + 1] = d
        if #chosen == limit then break end
      end
    end
    offset = offset + step
  end
else
  -- Only these updates' deliveries and, in order, whatever is first in their queues (it must go first).
  local seen, found = {}, {}
  for _, update_id in ipairs(cjson.decode(ARGV[11])) do
    for _, id in ipairs(redis.call('LRANGE', P .. 'update:' .. update_id .. ':deliveries', 0, -1)) do
      local d = facts(id)
      if d.channel == channel and (d.state == 'pending' or d.state == 'in_flight') then
        local first = id
        if ordering == 'in_order' then first = redis.call('LINDEX', queue_key(d.queue), 0) end
        if first and not seen[first] then
          seen[first] = true
          if redis.call('ZSCORE', ready, first) then
            local d = facts(first)
            if eligible(d) then found[#found + 1] = d end
          end
        end
      end
    end
  end
  table.sort(found, function(a, b) return tonumber(a.seq) < tonumber(b.seq) end)
  for i = 1, math.min(limit, #found) do chosen[i] = found[i] end
end

local known = {}
for _, update_id in ipairs(cjson.decode(ARGV[12])) do known[update_id] = true end
for _, d in ipairs(chosen) do
  lease(d, owner, lease_until)
  local progress = {}
  if d.has_progress == '1' then
    local entries = redis.call('HGETALL', P .. 'progress:' .. d.id)
    for i = 1, #entries, 2 do progress[entries[i]] = entries[i + 1] end
  end
  local parent = cjson.null
  if tonumber(d.update_seq) > 1 then parent = thread_parent(d) end
  claimed[#claimed + 1] = {row_of(d), parent, progress}
  if not known[d.update_id] then
    known[d.update_id] = true
    views[#views + 1] = {d.update_id, history(d.incident_id, d.update_seq)}
  end
end
flush()
return reply()
"""
)

FINISH: Final = (
    SHARED
    + r"""
-- ARGV: 2 owner, 3 outcomes (JSON), 4 now. Returns how many leases were still the owner's to record.
return record(ARGV[2], cjson.decode(ARGV[3]), ARGV[4])
"""
)

RELEASE: Final = (
    SHARED
    + r"""
-- ARGV: 2 owner, 3 delivery ids (JSON, '' for all the owner's leases), 4 why the attempt was interrupted
-- ('' when it had not started), 5 now. The attempt is not counted; an interrupted one is logged.
local owner, why, now = ARGV[2], ARGV[4], ARGV[5]
local ids
if ARGV[3] == '' then ids = redis.call('SMEMBERS', P .. 'owner:' .. owner) else ids = cjson.decode(ARGV[3]) end
local released = 0
for _, id in ipairs(ids) do
  local d = facts(id)
  if d.state == 'in_flight' and d.lease_owner == owner then
    if why ~= '' then log_attempt(id, d.attempts, '', now, 'interrupted', why) end
    d.state, d.attempts = 'pending', string.format('%d', math.max(tonumber(d.attempts) - 1, 0))
    redis.call('HSET', delivery_key(id), 'state', d.state, 'attempts', d.attempts, unpack(LEASE_ENDED))
    unlease(d)
    back_to_pending(d, now)
    released = released + 1
  end
end
flush()
return released
"""
)

RENEW: Final = r"""
-- ARGV: 1 prefix, 2 owner, 3 delivery ids (JSON), 4 lease until.
local P = ARGV[1]
for _, id in ipairs(cjson.decode(ARGV[3])) do
  local key = P .. 'delivery:' .. id
  local state, holder = unpack(redis.call('HMGET', key, 'state', 'lease_owner'))
  if state == 'in_flight' and holder == ARGV[2] then
    redis.call('HSET', key, 'lease_until', ARGV[4])
    redis.call('ZADD', P .. 'leases', ARGV[4], id)
  end
end
return 0
"""

SAVE_PROGRESS: Final = r"""
-- ARGV: 1 prefix, 2 owner, 3 delivery id, 4 entries (JSON: key, note, key, note...). Returns 0, saving
-- nothing, unless the owner holds the delivery's lease.
local P = ARGV[1]
local key = P .. 'delivery:' .. ARGV[3]
local state, holder = unpack(redis.call('HMGET', key, 'state', 'lease_owner'))
if state ~= 'in_flight' or holder ~= ARGV[2] then return 0 end
local entries = cjson.decode(ARGV[4])
for start = 1, #entries, 1000 do
  redis.call('HSET', P .. 'progress:' .. ARGV[3], unpack(entries, start, math.min(start + 999, #entries)))
end
redis.call('HSET', key, 'has_progress', '1')
redis.call('SADD', P .. 'with-progress', ARGV[3])
return 1
"""

RECOVER: Final = (
    SHARED
    + r"""
-- ARGV: 2 now, 3 owners known dead (JSON). Back to the queue: leases that ran out, and every lease of a dead
-- owner; the interrupted attempt counts (a delivery that kills its worker each time still runs out).
-- Returns the deliveries' rows, as JSON.
local now = ARGV[2]
local recovered = {}
local function take_back(d, why)
  d.state, d.not_before, d.last_error = 'pending', now, 'attempt interrupted: ' .. why
  redis.call('HSET', delivery_key(d.id), 'state', d.state, 'not_before', now, 'last_error', d.last_error,
    unpack(LEASE_ENDED))
  log_attempt(d.id, d.attempts, '', now, 'interrupted', why)
  unlease(d)
  back_to_pending(d, now)
  recovered[#recovered + 1] = row_of(d)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', '(' .. now)) do
  local d = facts(id)
  if d.state == 'in_flight' then take_back(d, 'its lease ran out') else later('ZREM', P .. 'leases', id) end
end
for _, owner in ipairs(cjson.decode(ARGV[3])) do
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'owner:' .. owner)) do
    local d = facts(id)
    if d.state == 'in_flight' and d.lease_owner == owner then take_back(d, 'its process died') end
  end
  touched_owners[owner] = true
end
flush()
return cjson.encode(recovered)
"""
)

EXPIRE_DUE: Final = (
    SHARED
    + r"""
-- ARGV: 2 now. Every channel's queued deliveries past their time-to-live, then progress no longer needed.
-- Returns the expired deliveries' rows, as JSON.
local expired = {}
for _, channel in ipairs(redis.call('SMEMBERS', P .. 'channels')) do
  for _, gone in ipairs(expire_channel(channel, ARGV[2])) do expired[#expired + 1] = gone end
end
prune_due(ARGV[2])
return cjson.encode(expired)
"""
)

REQUEUE_FAILED: Final = (
    SHARED
    + r"""
-- ARGV: 2 now, 3 update id ('' for any), 4 channel ('' for any). Returns {requeued, too old to requeue}.
local now, update_id, only = ARGV[2], ARGV[3], ARGV[4]
local candidates = {}
if update_id ~= '' then
  candidates = redis.call('LRANGE', P .. 'update:' .. update_id .. ':deliveries', 0, -1)
elseif only ~= '' then
  candidates = redis.call('SMEMBERS', channel_key(only, 'failed'))
else
  for _, channel in ipairs(redis.call('SMEMBERS', P .. 'channels')) do
    for _, id in ipairs(redis.call('SMEMBERS', channel_key(channel, 'failed'))) do candidates[#candidates + 1] = id end
  end
end
local requeued, too_old = 0, 0
for _, id in ipairs(candidates) do
  local d = facts(id)
  if d.state == 'failed' and (only == '' or d.channel == only) then
    if tonumber(d.expires_at) <= tonumber(now) then
      too_old = too_old + 1
    else
      d.state, d.attempts, d.not_before = 'pending', '0', now
      redis.call('HSET', delivery_key(id), 'state', 'pending', 'attempts', '0', 'not_before', now)
      redis.call('HDEL', delivery_key(id), 'finished_at')
      later('SREM', channel_key(d.channel, 'failed'), id)
      if redis.call('HINCRBY', P .. 'plan:' .. d.plan, 'open', 1) == 1 then
        redis.call('ZADD', channel_key(d.channel, 'open'), d.created_at, d.plan)
      end
      -- Back in its queue in acceptance order, before the first with a later seq (a queue is short: the
      -- open deliveries to one target); when that puts it first, the one first until now waits again.
      local queue = queue_key(d.queue)
      local members = redis.call('LRANGE', queue, 0, -1)
      local after = false
      for _, member in ipairs(members) do
        if tonumber(redis.call('HGET', delivery_key(member), 'seq')) > tonumber(d.seq) then
          after = member
          break
        end
      end
      if after then redis.call('LINSERT', queue, 'BEFORE', after, id) else redis.call('RPUSH', queue, id) end
      if after and after == members[1] then
        redis.call('ZREM', channel_key(d.channel, 'waiting'), after)
        redis.call('ZREM', channel_key(d.channel, 'ready'), after)
      end
      back_to_pending(d, now)
      requeued = requeued + 1
    end
  end
end
flush()
return {requeued, too_old}
"""
)
