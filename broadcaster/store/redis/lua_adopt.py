"""The script that adopts an update journaled elsewhere (a fallback journal, while Redis was out of reach):
in one atomic step, the update is committed as an accept would commit it (commit, with the ids it was
given) and what was already done with its deliveries is recorded, so no instance can claim a delivery that
went out meanwhile: one that ended is recorded as ended (with the attempts that got it there), one that
waits for a retry is pending at its time with its attempts counted, one never tried is simply pending."""

from __future__ import annotations

from typing import Final

from broadcaster.store.redis.lua_accept import COMMIT
from broadcaster.store.redis.lua_shared import SHARED

ADOPT: Final = (
    SHARED
    + COMMIT
    + r"""
-- ARGV: 2 facts, 3 the incident's JSON, 4 the update's JSON, 5 the plan (as commit takes them), 6 what was
-- done (JSON list of {id, state, attempts, started_at (of the last attempt), not_before, finished_at,
-- last_error, detail, external_id or null, log: earlier attempts as [number, started_at, finished_at,
-- outcome, error], progress: key, note, key, note...}), 7 the adopting owner, 8 now.
-- Returns 'known' when the update is in the journal already, 'retry' as commit does, else 'adopted'.
local m = cjson.decode(ARGV[2])
if redis.call('EXISTS', P .. 'update:' .. m.update_id) == 1 then return 'known' end
local committed = commit(m, ARGV[3], ARGV[4], cjson.decode(ARGV[5]), '')
if committed == 'retry' then return 'retry' end
local owner, now = ARGV[7], ARGV[8]
local why = 'superseded: a newer update of the incident was planned to this target meanwhile'
local outcomes, recorded = {}, {}
for _, done in ipairs(cjson.decode(ARGV[6])) do
  recorded[done.id] = true
  local d = facts(done.id)
  for _, entry in ipairs(done.log) do log_attempt(done.id, entry[1], entry[2], entry[3], entry[4], entry[5]) end
  if #done.progress > 0 then -- what its attempts got through (the addresses mailed): a retry skips it
    local entries = done.progress
    for start = 1, #entries, 1000 do
      redis.call('HSET', P .. 'progress:' .. done.id, unpack(entries, start, math.min(start + 999, #entries)))
    end
    redis.call('HSET', delivery_key(done.id), 'has_progress', '1')
    redis.call('SADD', P .. 'with-progress', done.id)
    d.has_progress = '1'
  end
  local state, last_error = done.state, done.last_error
  if stale[done.id] and state == 'pending' then -- waiting for a retry here: never to go out now
    state = 'superseded'
    if last_error ~= '' then last_error = last_error .. '; ' .. why else last_error = why end
  end
  if done.attempts == '0' then
    conclude(d, state, done.finished_at, last_error) -- superseded or expired before any attempt
  else
    -- Leased to the adopting owner for the moment of recording, as the attempt's own lane would record it.
    lease(d, owner, now)
    redis.call('HSET', delivery_key(done.id), 'attempts', done.attempts)
    local not_before = ''
    if state == 'pending' then not_before = done.not_before end
    outcomes[#outcomes + 1] = {done.id, state, done.attempts, done.started_at, done.finished_at, not_before,
      last_error, done.detail, done.external_id}
  end
end
for id in pairs(stale) do -- never attempted where it was accepted either
  if not recorded[id] then
    local d = facts(id)
    if d.state == 'pending' then conclude(d, 'superseded', now, why) end
  end
end
flush()
record(owner, outcomes, now)
return 'adopted'
"""
)
