"""The scripts that accept an update. The incident's new state is domain logic (transitions.apply_update), so
accepting reads first (ACCEPT_VIEW), computes in Python, and commits with ACCEPT_COMMIT, which writes only
if nothing it was computed from has changed meanwhile: otherwise it answers 'retry' and writes nothing."""

from __future__ import annotations

from typing import Final

from broadcaster.store.redis.lua_shared import SHARED

ACCEPT_VIEW: Final = r"""
-- ARGV: 1 prefix, 2 idempotency key ('' for none), 3 incident id ('' for a new incident), 4 content digest,
-- 5 accepted since (same content within the window; '' for no window). Returns {update id under the key,
-- its request digest, the incident's JSON, the update of the same content}, false for each not found.
local P = ARGV[1]
local keyed = {false, false}
if ARGV[2] ~= '' then keyed = redis.call('HMGET', P .. 'idempotency:' .. ARGV[2], 'update_id', 'request_digest') end
local incident = false
if ARGV[3] ~= '' then incident = redis.call('GET', P .. 'incident:' .. ARGV[3]) end
local same = false
if ARGV[5] ~= '' then
  local content = P .. 'content:' .. ARGV[4]
  if ARGV[3] ~= '' then
    -- Of an existing incident, only its latest update: A, B and A again is three updates, the last undoing B.
    local last = redis.call('LINDEX', P .. 'incident:' .. ARGV[3] .. ':updates', -1)
    local at = last and redis.call('ZSCORE', content, last)
    if at and tonumber(at) >= tonumber(ARGV[5]) then same = last end
  else
    same = redis.call('ZREVRANGEBYSCORE', content, '+inf', ARGV[5], 'LIMIT', 0, 1)[1] or false
  end
end
return {keyed[1], keyed[2], incident, same}
"""

REMEMBER_KEY: Final = r"""
-- ARGV: 1 prefix, 2 idempotency key, 3 update id, 4 request digest. The key answers that update from now on,
-- unless another took it first: returns the update it answers.
local key = ARGV[1] .. 'idempotency:' .. ARGV[2]
local found = redis.call('HGET', key, 'update_id')
if found then return found end
redis.call('HSET', key, 'update_id', ARGV[3], 'request_digest', ARGV[4])
redis.call('SADD', ARGV[1] .. 'idempotency-keys', ARGV[2])
return ARGV[3]
"""

COMMIT: Final = r"""
-- m: the facts (JSON: incident_id, expected, updated_at, is_open, next_update_at, update_id, update_seq,
-- created_at, key, request_digest, content, same_since, content_kept, stamp), then the incident's JSON, the
-- update's JSON, the plan (JSON: groups {channel, ordering, max attempts, expires at}, entries {group,
-- id, target}), the handoff (JSON: owner, lease_until, room, skip; '' for none).
-- Returns 'retry' having written nothing when the incident changed since it was read (`expected` updates,
-- 0 for a new one), the idempotency key was taken, or a new incident of the same content came in; else, as
-- JSON, [plan positions handed off, superseded rows, their thread parents, the incident's history].
local stale = {} -- delivery ids of an adopted update that a newer one to their target makes stale

-- Whether an update created after `created_at` is the latest planned for `field` (channel TAB target).
local function newer_planned(incident, field, created_at)
  local seq = redis.call('HGET', incident .. ':newest', field)
  local id = seq and redis.call('LINDEX', incident .. ':updates', tonumber(seq) - 1)
  local stored = id and redis.call('GET', P .. 'update:' .. id)
  return stored and tonumber(cjson.decode(stored).created_at) > tonumber(created_at) or false
end

local function commit(m, incident_json, update_json, plan, handoff_json)
  local incident = incident_key(m.incident_id)
  local updates = incident .. ':updates'
  if m.key ~= '' and redis.call('EXISTS', P .. 'idempotency:' .. m.key) == 1 then return 'retry' end
  if m.expected == 0 then
    if redis.call('EXISTS', incident) == 1 then return 'retry' end
    if m.same_since ~= '' and redis.call('ZCOUNT', P .. 'content:' .. m.content, m.same_since, '+inf') > 0 then
      return 'retry'
    end
  elseif redis.call('LLEN', updates) ~= m.expected then
    return 'retry'
  end

  redis.call('SET', incident, incident_json)
  redis.call('ZADD', P .. 'incidents:recent', m.updated_at, m.incident_id)
  if m.is_open then
    redis.call('ZADD', P .. 'incidents:open', m.updated_at, m.incident_id)
  else
    redis.call('ZREM', P .. 'incidents:open', m.incident_id)
  end
  if m.is_open and m.next_update_at ~= '' then
    redis.call('ZADD', P .. 'incidents:due', m.next_update_at, m.incident_id)
  else
    redis.call('ZREM', P .. 'incidents:due', m.incident_id)
  end
  redis.call('SET', P .. 'update:' .. m.update_id, update_json)
  redis.call('RPUSH', updates, m.update_id)
  if m.key ~= '' then
    redis.call('HSET', P .. 'idempotency:' .. m.key, 'update_id', m.update_id, 'request_digest', m.request_digest)
    redis.call('SADD', P .. 'idempotency-keys', m.key)
  end
  local content = P .. 'content:' .. m.content
  redis.call('ZADD', content, m.created_at, m.update_id)
  -- Only the last content_kept seconds are ever asked about (same_within is far shorter): older entries go,
  -- and the key itself once nothing new comes, so the journal does not keep a key per update for ever.
  redis.call('ZREMRANGEBYSCORE', content, '-inf', '(' .. (tonumber(m.created_at) - m.content_kept))
  redis.call('EXPIRE', content, m.content_kept)

  local groups, entries = plan.groups, plan.entries

  -- Which deliveries the accepting process's lanes take now: in plan order, as many as each lane has room
  -- for, on in-order channels only; none to a skipped or paused target or on a paused channel, none to a
  -- target with a delivery still open (it is not its turn), and only the first to a target named twice.
  local handoff, leased = false, {}
  if handoff_json ~= '' then
    handoff = cjson.decode(handoff_json)
    local room, blocked = {}, {}
    for channel, free in pairs(handoff.room) do
      local paused = channel_key(channel, 'paused')
      if free > 0 and redis.call('SISMEMBER', paused, '') == 0 then
        room[channel] = free
        local held = {}
        for _, target in ipairs(handoff.skip[channel] or {}) do held[target] = true end
        for _, target in ipairs(redis.call('SMEMBERS', paused)) do held[target] = true end
        blocked[channel] = held
      end
    end
    for i, entry in ipairs(entries) do
      local group = groups[entry[1]]
      local channel, target = group[1], entry[3]
      local free = room[channel]
      if free and free > 0 and group[2] == 'in_order' then
        local queue = queue_key(queue_name('in_order', channel, m.incident_id, target))
        if not blocked[channel][target] and redis.call('EXISTS', queue) == 0 then
          leased[i] = true
          room[channel] = free - 1
        end
        blocked[channel][target] = true
      end
    end
  end

  -- Latest-only plans supersede what is still queued of the incident for their target (not what is in
  -- flight: it may be going out right now; if it comes back, a claim supersedes it then). An adopted update
  -- (m.adopted) older than the latest planned to a target supersedes nothing there, and its own delivery
  -- to that target is stale (in `stale`, for the adopting script to end).
  local superseded = {}
  for _, entry in ipairs(entries) do
    local group = groups[entry[1]]
    if group[2] == 'latest_only' then
      if m.adopted and newer_planned(incident, group[1] .. '\t' .. entry[3], m.created_at) then
        stale[entry[2]] = true
      else
        local queue = queue_key(queue_name('latest_only', group[1], m.incident_id, entry[3]))
        for _, id in ipairs(redis.call('LRANGE', queue, 0, -1)) do
          local d = facts(id)
          if d.state == 'pending' then
            superseded[#superseded + 1] = conclude(d, 'superseded', m.stamp, 'superseded by update ' .. m.update_id)
          end
        end
        redis.call('HSET', incident .. ':newest', group[1] .. '\t' .. entry[3], m.update_seq)
      end
    end
  end

  flush()

  -- What every delivery of a group shares is written once, in the group's plan hash.
  -- Its plan's channel indexes it as open (by created_at) and, until a sweep past its time-to-live, expiring.
  local plan_keys, sizes = {}, {}
  for _, entry in ipairs(entries) do sizes[entry[1]] = (sizes[entry[1]] or 0) + 1 end
  for n, group in ipairs(groups) do
    local ref = m.update_id .. ':' .. string.format('%d', n)
    plan_keys[n] = ref
    redis.call('HSET', P .. 'plan:' .. ref, 'update_id', m.update_id, 'incident_id', m.incident_id,
      'update_seq', m.update_seq, 'channel', group[1], 'ordering', group[2], 'max_attempts', group[3],
      'created_at', m.stamp, 'expires_at', group[4], 'open', string.format('%d', sizes[n]))
    redis.call('ZADD', channel_key(group[1], 'open'), m.stamp, ref)
    redis.call('ZADD', channel_key(group[1], 'expiry'), group[4], ref)
  end
  -- Acceptance order (seq), as the SQLite journal gives it: what is handed off first, then the rest; within
  -- each, group by group in the order they first appear in the plan, and in plan order within a group.
  -- Deliveries are written in that order, so that the first written to a queue is its first.
  local parts, members_of = {{}, {}}, {}
  for i, entry in ipairs(entries) do
    local part = leased[i] and 1 or 2
    local key = part .. ':' .. entry[1]
    local members = members_of[key]
    if not members then
      members = {}
      members_of[key] = members
      parts[part][#parts[part] + 1] = members
    end
    members[#members + 1] = i
  end
  local in_order = {}
  for _, part in ipairs(parts) do
    for _, members in ipairs(part) do
      for _, i in ipairs(members) do in_order[#in_order + 1] = i end
    end
  end
  local count = #entries
  local before = redis.call('INCRBY', P .. 'seq', count) - count
  local ids, channels, handed = {}, {}, {}
  for position, i in ipairs(in_order) do
    local entry = entries[i]
    local group = groups[entry[1]]
    local channel, ordering, id, target = group[1], group[2], entry[2], entry[3]
    local queue = queue_name(ordering, channel, m.incident_id, target)
    local seq = string.format('%d', before + position)
    local first = redis.call('RPUSH', queue_key(queue), id) == 1 -- the latest seq yet: its queue's last
    if leased[i] then
      redis.call('HSET', delivery_key(id), 'plan', plan_keys[entry[1]], 'target', target, 'seq', seq,
        'state', 'in_flight', 'attempts', '1', 'lease_owner', handoff.owner, 'lease_until', handoff.lease_until)
      later('ZADD', P .. 'leases', handoff.lease_until, id)
      later('SADD', P .. 'owner:' .. handoff.owner, id)
      handed[#handed + 1] = i
    else
      redis.call('HSET', delivery_key(id), 'plan', plan_keys[entry[1]], 'target', target, 'seq', seq,
        'state', 'pending', 'attempts', '0')
      if first then later('ZADD', channel_key(channel, 'ready'), seq, id) end -- due as it is accepted
    end
    ids[i] = id
    channels[channel] = true
  end
  if #handed > 0 then redis.call('SADD', P .. 'owners', handoff.owner) end
  for channel in pairs(channels) do redis.call('SADD', P .. 'channels', channel) end
  push_all(P .. 'update:' .. m.update_id .. ':deliveries', ids)
  push_all(incident .. ':deliveries', ids)
  flush()

  -- What the handed-off deliveries carry, as a claim would give it: thread parents and the history.
  table.sort(handed) -- handed off in plan order
  local parents, past = {}, {}
  if #handed > 0 and tonumber(m.update_seq) > 1 then
    for _, i in ipairs(handed) do
      local group = groups[entries[i][1]]
      local d = {incident_id = m.incident_id, update_seq = m.update_seq, channel = group[1], target = entries[i][3]}
      parents[#parents + 1] = thread_parent(d)
    end
    past = history(m.incident_id, m.update_seq)
  end
  return cjson.encode({handed, superseded, parents, past})
end
"""

ACCEPT_COMMIT: Final = (
    SHARED
    + COMMIT
    + r"""
-- ARGV: 2 facts (JSON), 3 the incident's JSON, 4 the update's JSON, 5 the plan (JSON), 6 the handoff (JSON;
-- '' for none): see commit.
return commit(cjson.decode(ARGV[2]), ARGV[3], ARGV[4], cjson.decode(ARGV[5]), ARGV[6])
"""
)
