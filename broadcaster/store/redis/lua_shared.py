"""The Lua every queue script starts with: key names, and the moves of one delivery between the queue's sets
(see the key layout in journal.py). Each script is one atomic step on the server: no other client's command
runs between its reads and its writes.

Three rules hold throughout. Times are passed in, stored and compared as the decimal strings Python wrote
(records.number): Lua numbers print with 14 significant digits, which would round an epoch time to a tenth
of a millisecond, so no time is computed in Lua and written back. A delivery's fields are read once per
step into a table (`facts`). And changes to what only other scripts or later phases read (the expiry,
lease, owner, failed and stale sets, thread parents, and plans' open counts) are collected (`later`) and
sent one command per key at the end of each phase (`flush`): a fan-out of a thousand deliveries then costs
a few commands per delivery, not a dozen. The due sets (waiting, ready) and the queues change at once: a
phase reads them as it goes."""

from __future__ import annotations

from typing import Final

SHARED: Final = r"""
local P = ARGV[1]

local ROW = {'update_id', 'incident_id', 'update_seq', 'channel', 'target', 'state', 'attempts', 'max_attempts',
  'created_at', 'not_before', 'expires_at', 'finished_at', 'last_error', 'detail', 'external_id'}
-- A delivery's own fields; the rest are its plan's, the same for every delivery of one update to one channel.
local OWN = {'plan', 'target', 'seq', 'state', 'attempts', 'not_before', 'last_error', 'detail', 'external_id',
  'finished_at', 'lease_owner', 'has_progress'}
local PLAN = {'update_id', 'incident_id', 'update_seq', 'channel', 'ordering', 'max_attempts', 'created_at',
  'expires_at'}
local FINAL = {delivered = true, failed = true, expired = true, superseded = true}
local LEASE_ENDED = {'lease_owner', '', 'lease_until', ''} -- cheaper than deleting them; a blank owner is nobody

local function delivery_key(id) return P .. 'delivery:' .. id end
local function queue_key(queue) return P .. 'queue:' .. queue end
local function incident_key(id) return P .. 'incident:' .. id end
local channel_keys = {}
local function channel_key(channel, what)
  local keys = channel_keys[channel]
  if not keys then
    keys = {}
    channel_keys[channel] = keys
  end
  local key = keys[what]
  if not key then
    key = P .. 'channel:' .. channel .. ':' .. what
    keys[what] = key
  end
  return key
end

-- Which open deliveries a delivery waits behind: on an in-order channel every earlier one to its target, on a
-- latest-only channel only those of its own incident.
local function queue_name(ordering, channel, incident, target)
  if ordering == 'latest_only' then return 'latest_only\t' .. channel .. '\t' .. incident .. '\t' .. target end
  return 'in_order\t' .. channel .. '\t' .. target
end

local plans = {}
local function plan_of(ref)
  local plan = plans[ref]
  if not plan then
    local v = redis.call('HMGET', P .. 'plan:' .. ref, unpack(PLAN))
    plan = {update_id = v[1], incident_id = v[2], update_seq = v[3], channel = v[4], ordering = v[5],
      max_attempts = v[6], created_at = v[7], expires_at = v[8]}
    plans[ref] = plan
  end
  return plan
end

local function facts(id)
  local v = redis.call('HMGET', delivery_key(id), unpack(OWN))
  if not v[1] then return {id = id} end -- no such delivery
  local plan = plan_of(v[1])
  local d = {id = id, plan = v[1], target = v[2], seq = v[3], state = v[4], attempts = v[5],
    not_before = v[6] or plan.created_at, last_error = v[7] or '', detail = v[8] or '', external_id = v[9],
    finished_at = v[10], lease_owner = v[11] ~= '' and v[11], has_progress = v[12],
    update_id = plan.update_id, incident_id = plan.incident_id, update_seq = plan.update_seq,
    channel = plan.channel, ordering = plan.ordering, max_attempts = plan.max_attempts,
    created_at = plan.created_at, expires_at = plan.expires_at, queue = false}
  d.queue = queue_name(d.ordering, d.channel, d.incident_id, d.target)
  return d
end

-- The fields recording an outcome needs (a thousand of them a fan-out): fewer read, the same names.
local RECORDING = {'plan', 'target', 'state', 'lease_owner', 'has_progress', 'external_id', 'last_error'}
local function recording_facts(id)
  local v = redis.call('HMGET', delivery_key(id), unpack(RECORDING))
  if v[3] ~= 'in_flight' then return {id = id, state = v[3]} end
  local plan = plan_of(v[1])
  local d = {id = id, plan = v[1], target = v[2], state = v[3], lease_owner = v[4] ~= '' and v[4],
    has_progress = v[5], external_id = v[6], last_error = v[7] or '', update_seq = plan.update_seq,
    incident_id = plan.incident_id, channel = plan.channel, ordering = plan.ordering, expires_at = plan.expires_at,
    queue = false}
  d.queue = queue_name(d.ordering, d.channel, d.incident_id, d.target)
  return d
end

-- A delivery as records.delivery_from_row reads it: its id, then ROW (null for a field not set).
local function row_of(d)
  local found = {d.id}
  for i, name in ipairs(ROW) do
    local value = d[name]
    if not value then value = cjson.null end
    found[i + 1] = value
  end
  return found
end
local function row(id) return row_of(facts(id)) end

-- Changes to index sets, collected per command and key, sent by flush() in the order first collected; and
-- how many open deliveries each plan lost.
local collected, collected_order, touched_owners, closed = {}, {}, {}, {}
local function later(command, key, first, second)
  local by_key = collected[command]
  if not by_key then
    by_key = {}
    collected[command] = by_key
  end
  local args = by_key[key]
  if not args then
    args = {}
    by_key[key] = args
    collected_order[#collected_order + 1] = {command, key, args}
  end
  args[#args + 1] = first
  if second ~= nil then args[#args + 1] = second end
end
local function flush()
  for _, change in ipairs(collected_order) do
    local command, key, args = change[1], change[2], change[3]
    for start = 1, #args, 1000 do -- an even slice: ZADD's arguments come in pairs
      redis.call(command, key, unpack(args, start, math.min(start + 999, #args)))
    end
  end
  collected, collected_order = {}, {}
  -- A plan with nothing open leaves its channel's open and expiry indexes.
  for ref, count in pairs(closed) do
    if redis.call('HINCRBY', P .. 'plan:' .. ref, 'open', -count) <= 0 then
      local channel = plan_of(ref).channel
      redis.call('ZREM', channel_key(channel, 'open'), ref)
      redis.call('ZREM', channel_key(channel, 'expiry'), ref)
    end
  end
  closed = {}
  -- An owner that no longer holds anything leaves the set recover() reads.
  for owner in pairs(touched_owners) do
    if redis.call('EXISTS', P .. 'owner:' .. owner) == 0 then redis.call('SREM', P .. 'owners', owner) end
  end
  touched_owners = {}
end

-- A pending delivery first in its queue may be leased once due: due already, it goes to its channel's ready
-- set (by acceptance order, what claims lease from); due later, to the waiting set (by time), from which a
-- claim moves what has come due.
local function admit(d, now)
  if tonumber(d.not_before) <= tonumber(now) then
    redis.call('ZADD', channel_key(d.channel, 'ready'), d.seq, d.id)
    redis.call('ZREM', channel_key(d.channel, 'waiting'), d.id)
  else
    redis.call('ZADD', channel_key(d.channel, 'waiting'), d.not_before, d.id)
  end
end

local function admit_first(queue, channel, now)
  local first = redis.call('LINDEX', queue_key(queue), 0)
  if first and not redis.call('ZSCORE', channel_key(channel, 'ready'), first) then
    local d = facts(first)
    if d.state == 'pending' then admit(d, now) end
  end
end

-- A delivery that ends leaves its queue (d as read before: a pending one leaves the due sets too); the
-- next one in the queue, if any, has its turn.
local function leave_queue(d, now)
  redis.call('LREM', queue_key(d.queue), 1, d.id)
  closed[d.plan] = (closed[d.plan] or 0) + 1
  if d.ordering == 'latest_only' then later('SREM', channel_key(d.channel, 'stale'), d.id) end
  if d.state == 'pending' then
    redis.call('ZREM', channel_key(d.channel, 'waiting'), d.id)
    redis.call('ZREM', channel_key(d.channel, 'ready'), d.id)
  end
  admit_first(d.queue, d.channel, now)
end

-- A delivery pending again (its state and not_before already written, and in d): its plan back in the
-- expiry index (a sweep may have passed over it in flight), eligible if first in its queue, and on a
-- latest-only channel marked stale when a newer update of its incident was planned meanwhile, for the next
-- claim to supersede.
local function back_to_pending(d, now)
  later('ZADD', channel_key(d.channel, 'expiry'), d.expires_at, d.plan)
  admit_first(d.queue, d.channel, now)
  if d.ordering == 'latest_only' then
    local newest = redis.call('HGET', incident_key(d.incident_id) .. ':newest', d.channel .. '\t' .. d.target)
    if newest and tonumber(newest) > tonumber(d.update_seq) then
      later('SADD', channel_key(d.channel, 'stale'), d.id)
    end
  end
end

-- Lease a pending delivery that is first in its queue and due (so in the ready set); d follows.
local function lease(d, owner, lease_until)
  d.attempts = string.format('%d', tonumber(d.attempts) + 1)
  d.state = 'in_flight'
  redis.call('HSET', delivery_key(d.id), 'state', 'in_flight', 'attempts', d.attempts, 'lease_owner', owner,
    'lease_until', lease_until)
  later('ZREM', channel_key(d.channel, 'ready'), d.id) -- a claim reads the ready set only before it leases
  later('ZADD', P .. 'leases', lease_until, d.id)
  later('SADD', P .. 'owner:' .. owner, d.id)
  if not touched_owners[owner] then later('SADD', P .. 'owners', owner) end
  touched_owners[owner] = true
end

-- The index side of ending a lease; the caller writes LEASE_ENDED into the delivery.
local function unlease(d)
  later('ZREM', P .. 'leases', d.id)
  if d.lease_owner then
    later('SREM', P .. 'owner:' .. d.lease_owner, d.id)
    touched_owners[d.lease_owner] = true
  end
end

local function log_attempt(id, number, started_at, finished_at, outcome, error)
  redis.call('RPUSH', P .. 'attempts:' .. id, cjson.encode({number, started_at, finished_at, outcome, error}))
end

-- Forget the steps that went through ('' notes) of a delivery that can no longer be attempted; keep refusals.
local function prune(id)
  if redis.call('SREM', P .. 'with-progress', id) == 1 then
    local progress = P .. 'progress:' .. id
    local entries = redis.call('HGETALL', progress)
    for i = 1, #entries, 2 do
      if entries[i + 1] == '' then redis.call('HDEL', progress, entries[i]) end
    end
    redis.call('HSET', delivery_key(id), 'has_progress', '0')
  end
end

-- The same for every delivery holding progress that has ended, or failed past its time-to-live (when a
-- requeue can no longer resume it): few at any time, whatever the history.
local function prune_due(now)
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'with-progress')) do
    local d = facts(id)
    local state = d.state
    if state == 'delivered' or state == 'superseded' or state == 'expired'
        or (state == 'failed' and tonumber(d.expires_at) <= tonumber(now)) then
      prune(id)
    end
  end
end

-- Superseded or expired while pending: ended without an attempt of its own. Returns its row.
local function conclude(d, state, stamp, why)
  redis.call('HSET', delivery_key(d.id), 'state', state, 'finished_at', stamp, 'last_error', why)
  leave_queue(d, stamp)
  if d.has_progress == '1' then prune(d.id) end
  d.state, d.finished_at, d.last_error = state, stamp, why
  return row_of(d)
end

-- Expire what is pending of each plan past its time-to-live; the plan leaves the index (a delivery of it in
-- flight now puts it back if it comes back pending).
local function expire_channel(channel, now)
  local expired = {}
  local expiry = channel_key(channel, 'expiry')
  for _, ref in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
    redis.call('ZREM', expiry, ref)
    for _, id in ipairs(redis.call('LRANGE', P .. 'update:' .. plan_of(ref).update_id .. ':deliveries', 0, -1)) do
      local d = facts(id)
      if d.plan == ref and d.state == 'pending' then
        local why = 'not delivered within its time-to-live'
        if d.last_error ~= '' then why = why .. '; last error: ' .. d.last_error end
        expired[#expired + 1] = conclude(d, 'expired', now, why)
      end
    end
  end
  flush()
  return expired
end

local function supersede_stale(channel, now)
  local superseded = {}
  local stale = channel_key(channel, 'stale')
  for _, id in ipairs(redis.call('SMEMBERS', stale)) do
    local d = facts(id)
    if d.state == 'pending' then
      superseded[#superseded + 1] = conclude(d, 'superseded', now, 'superseded by a newer update')
    else
      later('SREM', stale, id)
    end
  end
  flush()
  return superseded
end

-- Record outcomes of leases `owner` still holds; each outcome is {id, state, attempt, started_at,
-- finished_at, not_before or '', error, detail, external_id or null}. A first attempt that delivered logs no
-- attempt row: the delivery's own fields say it all (reading.attempts shows it).
local function record(owner, outcomes, now)
  local recorded = 0
  for _, o in ipairs(outcomes) do
    local d = recording_facts(o[1])
    if d.state == 'in_flight' and d.lease_owner == owner then
      recorded = recorded + 1
      local key, state = delivery_key(d.id), o[2]
      if not (state == 'delivered' and o[3] == '1') then
        log_attempt(d.id, o[3], o[4], o[5], state == 'pending' and 'retry' or state, o[7])
      end
      local fields = {'state', state, 'lease_owner', '', 'lease_until', ''}
      if o[7] ~= d.last_error then fields[#fields + 1], fields[#fields + 2] = 'last_error', o[7] end
      if o[6] ~= '' then
        fields[#fields + 1], fields[#fields + 2] = 'not_before', o[6]
        d.not_before = o[6]
      end
      if o[8] ~= '' then fields[#fields + 1], fields[#fields + 2] = 'detail', o[8] end
      if o[9] ~= cjson.null then
        fields[#fields + 1], fields[#fields + 2] = 'external_id', o[9]
        d.external_id = o[9]
      end
      unlease(d)
      if FINAL[state] then
        fields[#fields + 1], fields[#fields + 2] = 'finished_at', o[5]
        redis.call('HSET', key, unpack(fields))
        leave_queue(d, now)
        if state == 'failed' then
          later('SADD', channel_key(d.channel, 'failed'), d.id)
        else
          if d.has_progress == '1' then prune(d.id) end
          if state == 'delivered' and d.external_id then
            local post = d.channel .. '\t' .. d.target .. '\t' .. d.update_seq
            later('HSET', incident_key(d.incident_id) .. ':posts', post, d.external_id)
          end
        end
      else
        redis.call('HSET', key, unpack(fields)) -- in flight, it has no finished_at to clear
        d.state = 'pending'
        back_to_pending(d, now)
      end
    end
  end
  flush()
  return recorded
end

-- The external id of the latest earlier update of the same incident delivered on the same channel and target.
local function thread_parent(d)
  local high = tonumber(d.update_seq) - 1
  local posts = incident_key(d.incident_id) .. ':posts'
  local prefix = d.channel .. '\t' .. d.target .. '\t'
  while high >= 1 do
    local low = math.max(1, high - 99)
    local fields = {}
    for seq = high, low, -1 do fields[#fields + 1] = prefix .. string.format('%d', seq) end
    local found = redis.call('HMGET', posts, unpack(fields))
    for i = 1, #fields do
      if found[i] then return found[i] end
    end
    high = low - 1
  end
  return cjson.null
end

-- An update's incident and history as a claim hands them out: the stored updates up to it, oldest first.
local function history(incident_id, update_seq)
  local ids = redis.call('LRANGE', incident_key(incident_id) .. ':updates', 0, tonumber(update_seq) - 1)
  local found = {}
  -- MGET in slices of 1,000: unpack cannot spread a long incident's thousands of keys at once.
  for first = 1, #ids, 1000 do
    local keys = {}
    for i = first, math.min(first + 999, #ids) do keys[#keys + 1] = P .. 'update:' .. ids[i] end
    for _, value in ipairs(redis.call('MGET', unpack(keys))) do found[#found + 1] = value end
  end
  return found
end

-- RPUSH in slices: Lua's unpack has a limit on how many values it spreads.
local function push_all(key, values)
  for start = 1, #values, 1000 do
    redis.call('RPUSH', key, unpack(values, start, math.min(start + 999, #values)))
  end
end
"""
