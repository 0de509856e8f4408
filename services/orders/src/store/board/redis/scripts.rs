//! The seat board's Lua scripts. Each runs over one event's keys (one hash tag, so one Redis
//! Cluster slot) and publishes the change it makes in the same script.

use std::sync::LazyLock;

use ::redis::Script;

/// Helpers every script starts with. The caller passes, after its own arguments' fixed part:
/// ARGV[1] channel, ARGV[2] event id, ARGV[3] key lifetime (ms), ARGV[4] first version; and the
/// event's keys as KEYS[1] held index, KEYS[2] sales hash, KEYS[3] version, KEYS[4] layout
/// version, KEYS[5] layout lock. A hold's own keys follow from KEYS[6].
const LIBRARY: &str = r"
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function current_version()
    local v = redis.call('GET', KEYS[3])
    if not v then
        redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
        return ARGV[4]
    end
    return v
end
local function layout_version()
    redis.call('SET', KEYS[4], '0', 'NX', 'PX', ARGV[3])
    redis.call('PEXPIRE', KEYS[4], ARGV[3])
    return redis.call('GET', KEYS[4])
end
local function bump(changes)
    current_version()
    local v = redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
    redis.call('PUBLISH', ARGV[1],
        cjson.encode({eventId = ARGV[2], version = v, changes = changes}))
    return string.format('%d', v)
end
-- The sales hash's mark that `order`'s sale of `seat` was cancelled: a sale with it is never
-- (re)recorded, whoever read it before the cancellation.
local function unsold(seat, order)
    return '~unsold:' .. seat .. '|' .. order
end
-- A hold's entry in the held index, for one of its seats.
local function entry_of(seat, hold, user)
    return seat .. '|' .. hold .. '|' .. user
end
-- The entry of the script's hold (hold ARGV[5], user ARGV[6]).
local function held_entry(seat)
    return entry_of(seat, ARGV[5], ARGV[6])
end
-- Whether the hold's slot and seat keys (KEYS[6..]) all still carry it.
local function hold_intact()
    for i = 6, #KEYS do
        if redis.call('GET', KEYS[i]) ~= ARGV[5] then return false end
    end
    return true
end
-- Makes the hold (seat ids from ARGV[first_seat]) last `ttl` ms from `now`, its keys and its
-- entries in the held index alike; answers the new expiry.
local function extend_hold(now, ttl, first_seat)
    local until_ms = now + ttl
    for i = 6, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
    for i = 7, #KEYS do
        redis.call('ZADD', KEYS[1], 'XX', until_ms, held_entry(ARGV[first_seat + i - 7]))
    end
    return string.format('%d', until_ms)
end
local function sweep(now)
    local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
    if #gone > 0 then
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local changes = {}
        for i, entry in ipairs(gone) do
            changes[i] = {string.match(entry, '^[^|]*'), 'available'}
        end
        bump(changes)
    end
    return gone
end
-- Why no hold checked against layout version `layout` can be taken on the event now, or nil.
local function refusal_at(layout)
    if redis.call('HEXISTS', KEYS[2], '~known') == 0 then return 'sold-unknown' end
    if redis.call('EXISTS', KEYS[5]) == 1 then return 'layout-locked' end
    if layout_version() ~= layout then return 'stale-layout' end
    return nil
end
-- The same for the script's hold (checked against layout version ARGV[9]).
local function take_refusal()
    return refusal_at(ARGV[9])
end
-- Holds `seats` (their keys `seat_keys`) for hold ARGV[5] of user ARGV[6] for ARGV[7] ms in
-- the first free of the holder's ARGV[8] slots (keys from KEYS[6]); answers the answer of a
-- take, {'held', slot, expiry, version}, or nil (nothing taken) when every slot is taken.
local function hold_seats(now, seats, seat_keys)
    local slot = -1
    for s = 0, tonumber(ARGV[8]) - 1 do
        if redis.call('EXISTS', KEYS[6 + s]) == 0 then slot = s break end
    end
    if slot < 0 then return nil end
    local ttl = tonumber(ARGV[7])
    local until_ms = now + ttl
    redis.call('SET', KEYS[6 + slot], ARGV[5], 'PX', ttl)
    local changes = {}
    for i, seat in ipairs(seats) do
        redis.call('SET', seat_keys[i], ARGV[5], 'PX', ttl)
        redis.call('ZADD', KEYS[1], until_ms, held_entry(seat))
        changes[i] = {seat, 'held'}
    end
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'held', tostring(slot), string.format('%d', until_ms), bump(changes)}
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{LIBRARY}\n{body}"))
}

/// KEYS[6..6+cap) slot keys, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] TTL
/// (ms), ARGV[8] cap, ARGV[9] layout version, then the seat ids.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        local refusal = take_refusal()
        if refusal then return {gone, {refusal}} end
        local first_seat = 6 + tonumber(ARGV[8])
        local seats, seat_keys, conflicts = {}, {}, {}
        for i = first_seat, #KEYS do
            local seat = ARGV[10 + i - first_seat]
            seats[#seats + 1] = seat
            seat_keys[#seat_keys + 1] = KEYS[i]
            if redis.call('HEXISTS', KEYS[2], seat) == 1 or redis.call('EXISTS', KEYS[i]) == 1 then
                conflicts[#conflicts + 1] = seat
            end
        end
        if #conflicts > 0 then
            table.insert(conflicts, 1, 'conflict')
            return {gone, conflicts}
        end
        return {gone, hold_seats(now, seats, seat_keys) or {'full'}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] TTL (ms), then
/// the seat ids. Extends only when the slot and every seat still carry the hold.
pub(super) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        if not hold_intact() then return {gone, {}} end
        return {gone, {extend_hold(now, tonumber(ARGV[7]), 8)}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] claim (ms),
/// ARGV[8] layout version, then the seat ids. Like EXTEND, but only while the layout version
/// is unchanged, and never shortening the hold.
pub(super) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        if not hold_intact() then return {gone, {'gone'}} end
        if layout_version() ~= ARGV[8] then return {gone, {'stale-layout'}} end
        local ttl = tonumber(ARGV[7])
        local left = redis.call('PTTL', KEYS[6])
        if left >= ttl then
            -- The stored expiry, not now + PTTL, which can differ by a millisecond per call.
            local until_ms = redis.call('ZSCORE', KEYS[1], held_entry(ARGV[9]))
            return {gone, {'claimed', until_ms or string.format('%d', now + left)}}
        end
        return {gone, {'claimed', extend_hold(now, ttl, 9)}}
        ",
    )
});

/// KEYS[6] slot key, then seat keys. ARGV[5] hold id, ARGV[6] user id, ARGV[7] `release` or
/// `sell:<orderId>`, then the seat ids. Frees what still carries the hold; selling also records
/// every seat as sold to the order, unless that sale was cancelled already.
pub(super) static FREE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local selling = string.sub(ARGV[7], 1, 5) == 'sell:'
        local order = string.sub(ARGV[7], 6)
        local changes = {}
        for i = 7, #KEYS do
            local seat = ARGV[8 + i - 7]
            if redis.call('GET', KEYS[i]) == ARGV[5] then
                redis.call('DEL', KEYS[i])
                redis.call('ZREM', KEYS[1], held_entry(seat))
                if not selling then changes[#changes + 1] = {seat, 'available'} end
            end
            if selling and redis.call('HEXISTS', KEYS[2], unsold(seat, order)) == 0
                and redis.call('HSET', KEYS[2], seat, order) == 1 then
                changes[#changes + 1] = {seat, 'reserved'}
            end
        end
        if redis.call('GET', KEYS[6]) == ARGV[5] then redis.call('DEL', KEYS[6]) end
        if selling then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
        if #changes > 0 then bump(changes) end
        return {gone, {}}
        ",
    )
});

/// ARGV[5] lock token, ARGV[6] lock TTL (ms). Answers {swept, {'locked'}}, {swept, {'busy'}}
/// or {swept, {'held', count}}.
pub(super) static LOCK_LAYOUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local held = redis.call('ZCARD', KEYS[1])
        if held > 0 then return {gone, {'held', tostring(held)}} end
        if not redis.call('SET', KEYS[5], ARGV[5], 'NX', 'PX', ARGV[6]) then
            return {gone, {'busy'}}
        end
        return {gone, {'locked'}}
        ",
    )
});

/// ARGV[5] lock token. Releases the lock if it is still this one; bumps the layout version.
pub(super) static UNLOCK_LAYOUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        if redis.call('GET', KEYS[5]) == ARGV[5] then redis.call('DEL', KEYS[5]) end
        layout_version()
        redis.call('INCR', KEYS[4])
        return {{}, {}}
        ",
    )
});

/// Answers {{}, {layout version}}.
pub(super) static LAYOUT_VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        return {{}, {layout_version()}}
        ",
    )
});

/// ARGV[5] the order whose sale was cancelled, ARGV[6..] its seat ids. Takes off each seat
/// still sold to that order (a seat sold again since stays sold) and marks the sale cancelled.
pub(super) static UNSELL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local order = ARGV[5]
        local changes = {}
        for i = 6, #ARGV do
            local seat = ARGV[i]
            redis.call('HSET', KEYS[2], unsold(seat, order), '1')
            if redis.call('HGET', KEYS[2], seat) == order then
                redis.call('HDEL', KEYS[2], seat)
                changes[#changes + 1] = {seat, 'available'}
            end
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        if #changes > 0 then bump(changes) end
        return {gone, {}}
        ",
    )
});

/// ARGV[5] `known` (a whole load: the hash is complete after it) or `some`, ARGV[6..] pairs of
/// a seat id and the order that bought it, as the order store has them. A sale already
/// recorded, or marked cancelled, is left as it is: the store was read before.
pub(super) static LOAD_SOLD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local changes = {}
        for i = 6, #ARGV - 1, 2 do
            local seat, order = ARGV[i], ARGV[i + 1]
            if redis.call('HEXISTS', KEYS[2], unsold(seat, order)) == 0
                and redis.call('HSETNX', KEYS[2], seat, order) == 1 then
                changes[#changes + 1] = {seat, 'reserved'}
            end
        end
        if ARGV[5] == 'known' then
            redis.call('HSET', KEYS[2], '~known', '1')
        elseif #changes > 0 then
            bump(changes)
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        return {{}, {}}
        ",
    )
});

/// Answers {swept, {{state, version}, held entries, sold seats}}.
pub(super) static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local v = current_version()
        if redis.call('HEXISTS', KEYS[2], '~known') == 0 then
            return {gone, {{'sold-unknown', v}, {}, {}}}
        end
        return {gone, {{'ok', v}, redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('HKEYS', KEYS[2])}}
        ",
    )
});

/// Answers {swept, {version}}.
pub(super) static VERSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        return {gone, {current_version()}}
        ",
    )
});

/// Best available within a region of the venue (see `RedisBoard::take_best`): the best-ranked
/// ARGV[10] usable free seats side by side in one run, preferring among equal ranks those that
/// strand no single free seat, then the first; taken like [`TAKE`] takes seats. A run is seats
/// side by side in one row; beyond its ends are seats that were taken, an aisle or the row's
/// end, none of them free.
/// KEYS[6..6+cap) slot keys, then the region's seat keys. ARGV[5] hold id, ARGV[6] user id,
/// ARGV[7] TTL (ms), ARGV[8] cap, ARGV[9] layout version, ARGV[10] count, ARGV[11] `1` when a
/// wheelchair space must be among them, ARGV[12] the version of the caller's view, ARGV[13]
/// the number of runs R; then per run its size and its row's rank; then the seat ids;
/// last, one string of four characters a seat (see [`pack_seat`](super::pack_seat)): its rank
/// within the row (distance from the middle) times 4 plus its flags (1: it may be given for
/// this request, 2: a wheelchair space). The script's cost is mostly per seat, so each seat
/// costs one argument and a few bytes, not two arguments and a number to parse. Answers
/// whether the view was current, so the caller knows when to read the board again.
pub(super) static BEST: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local ARGV, KEYS, tonumber, byte = ARGV, KEYS, tonumber, string.byte
        local now = now_ms()
        local gone = sweep(now)
        local refusal = take_refusal()
        if refusal then return {gone, {refusal}} end
        local current = (current_version() == ARGV[12]) and '1' or '0'
        local n = tonumber(ARGV[10])
        local accessible = ARGV[11] == '1'
        local runs = tonumber(ARGV[13])
        local first_id = 14 + 2 * runs
        local first_key = 6 + tonumber(ARGV[8])
        local count = #KEYS - first_key + 1
        local packed = ARGV[first_id + count]
        -- Every seat of the region: free (neither sold nor held), usable for this request, a
        -- wheelchair space, its rank within its row. Sales and holds are read in slices (two
        -- commands a slice, not two a seat; `unpack` takes a few thousand values at most).
        local free, usable, space, rank = {}, {}, {}, {}
        for from = 1, count, 1000 do
            local to = math.min(from + 999, count)
            local sold = redis.call('HMGET', KEYS[2],
                unpack(ARGV, first_id + from - 1, first_id + to - 1))
            local held = redis.call('MGET', unpack(KEYS, first_key + from - 1, first_key + to - 1))
            for k = from, to do
                local c1, c2, c3, c4 = byte(packed, 4 * k - 3, 4 * k)
                local value = (c1 - 48) * 262144 + (c2 - 48) * 4096 + (c3 - 48) * 64 + c4 - 48
                local flags = value % 4
                local f = not sold[k - from + 1] and not held[k - from + 1]
                free[k] = f
                usable[k] = f and flags % 2 == 1
                space[k] = flags >= 2
                rank[k] = (value - flags) / 4
            end
        end
        -- The best so far: row rank, sum of ranks in the row, strands (0/1), first seat. A
        -- window of n seats slides along each run, keeping how many of its seats cannot be
        -- given, their ranks' sum and its wheelchair spaces.
        local best_row, best_sum, best_strands, best_first = nil, 0, 0, 0
        local last = 0
        for r = 1, runs do
            local start = last + 1
            last = last + tonumber(ARGV[12 + 2 * r])
            local row_rank = tonumber(ARGV[13 + 2 * r])
            if best_row == nil or row_rank <= best_row then
                local bad, sum, spaces = 0, 0, 0
                for j = start, last do
                    if not usable[j] then bad = bad + 1 end
                    sum = sum + rank[j]
                    if space[j] then spaces = spaces + 1 end
                    local first = j - n + 1
                    if first > start then
                        local out = first - 1
                        if not usable[out] then bad = bad - 1 end
                        sum = sum - rank[out]
                        if space[out] then spaces = spaces - 1 end
                    end
                    if first >= start and bad == 0 and (not accessible or spaces > 0) then
                        -- A single free seat left between it and a taken seat or the run's end?
                        local strands = 0
                        if (first > start and free[first - 1]
                                and (first - 1 == start or not free[first - 2]))
                            or (j < last and free[j + 1] and (j + 1 == last or not free[j + 2])) then
                            strands = 1
                        end
                        if best_row == nil or row_rank < best_row
                            or (row_rank == best_row and (sum < best_sum
                            or (sum == best_sum and strands < best_strands))) then
                            best_row, best_sum, best_strands, best_first =
                                row_rank, sum, strands, first
                        end
                    end
                end
            end
        end
        if best_row == nil then return {gone, {'none', current}} end
        local seats, seat_keys = {}, {}
        for k = best_first, best_first + n - 1 do
            seats[#seats + 1] = ARGV[first_id + k - 1]
            seat_keys[#seat_keys + 1] = KEYS[first_key + k - 1]
        end
        local answer = hold_seats(now, seats, seat_keys)
        if not answer then return {gone, {'full'}} end
        answer[#answer + 1] = current
        for _, seat in ipairs(seats) do answer[#answer + 1] = seat end
        return {gone, answer}
        ",
    )
});

/// Holds the seats a process chose for a batch of best-available buyers from its view of the
/// board at version ARGV[5], only while the board is still at that version (then the view was
/// the board, and its choices are the best for each buyer in turn). ARGV[6] the layout version,
/// ARGV[7] the number of buyers B; then per buyer its hold id, user id, TTL (ms), slot cap C
/// and seat count N, then its N seat ids; KEYS[6..] per buyer its C slot keys, then its N seat
/// keys. Answers, flat, a refusal code; or per buyer in turn `held, slot, expiry, version`,
/// stopping at `full` (its slots were all taken: the choices after it counted on its seats
/// being taken) or `moved` (the board changed, or a seat was taken after all). The holds of
/// one call are one change of the board: they share the version after it.
pub(super) static GRANT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local now = now_ms()
        local gone = sweep(now)
        local refusal = refusal_at(ARGV[6])
        if refusal then return {gone, {refusal}} end
        if current_version() ~= ARGV[5] then return {gone, {'moved'}} end
        local call = redis.call
        local buyers = tonumber(ARGV[7])
        -- Where each buyer's arguments and keys start, and every chosen seat at once.
        local first_arg, first_key, ids, keys = {}, {}, {}, {}
        local arg, key = 8, 6
        for b = 1, buyers do
            first_arg[b], first_key[b] = arg, key
            local cap, n = tonumber(ARGV[arg + 3]), tonumber(ARGV[arg + 4])
            for i = 1, n do
                ids[#ids + 1] = ARGV[arg + 4 + i]
                keys[#keys + 1] = KEYS[key + cap + i - 1]
            end
            arg, key = arg + 5 + n, key + cap + n
        end
        local sold = call('HMGET', KEYS[2], unpack(ids))
        local held = call('MGET', unpack(keys))
        local answers, changes, entries, versions, given = {}, {}, {}, {}, {}
        local seat = 0
        for b = 1, buyers do
            arg, key = first_arg[b], first_key[b]
            local hold, user = ARGV[arg], ARGV[arg + 1]
            local ttl, cap, n = tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3]), tonumber(ARGV[arg + 4])
            -- The view said free; a seat taken all the same (or twice in this call) means it
            -- was wrong: stop.
            local taken = false
            for i = seat + 1, seat + n do
                if sold[i] or held[i] or given[ids[i]] then taken = true end
                given[ids[i]] = true
            end
            if taken then answers[#answers + 1] = 'moved' break end
            local slot = -1
            for s = 0, cap - 1 do
                if call('EXISTS', KEYS[key + s]) == 0 then slot = s break end
            end
            if slot < 0 then answers[#answers + 1] = 'full' break end
            local until_ms = now + ttl
            call('SET', KEYS[key + slot], hold, 'PX', ttl)
            for i = seat + 1, seat + n do
                call('SET', keys[i], hold, 'PX', ttl)
                entries[#entries + 1] = until_ms
                entries[#entries + 1] = entry_of(ids[i], hold, user)
                changes[#changes + 1] = {ids[i], 'held'}
            end
            seat = seat + n
            answers[#answers + 1] = 'held'
            answers[#answers + 1] = tostring(slot)
            answers[#answers + 1] = string.format('%d', until_ms)
            answers[#answers + 1] = ''
            versions[#versions + 1] = #answers
        end
        if #changes > 0 then
            call('ZADD', KEYS[1], unpack(entries))
            call('PEXPIRE', KEYS[1], ARGV[3])
            -- One change for the whole batch: its holds share the version after it.
            local version = bump(changes)
            for _, at in ipairs(versions) do answers[at] = version end
        end
        return {gone, answers}
        ",
    )
});

/// Changes an intact hold's seats: KEYS[6] its slot key, then the keys of its ARGV[7] seats,
/// of the ARGV[8] seats to add, and of the seats to free. ARGV[5] hold id, ARGV[6] user id,
/// then the seat ids in the same order. Every seat to add must be free, or nothing changes;
/// added seats expire with the hold.
pub(super) static CHANGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
        local gone = sweep(now_ms())
        local held, adding = tonumber(ARGV[7]), tonumber(ARGV[8])
        local first_add, first_free = 7 + held, 7 + held + adding
        for i = 6, first_add - 1 do
            if redis.call('GET', KEYS[i]) ~= ARGV[5] then return {gone, {'gone'}} end
        end
        local conflicts = {}
        for i = first_add, first_free - 1 do
            local seat = ARGV[i + 2]
            if redis.call('HEXISTS', KEYS[2], seat) == 1 or redis.call('EXISTS', KEYS[i]) == 1 then
                conflicts[#conflicts + 1] = seat
            end
        end
        if #conflicts > 0 then
            table.insert(conflicts, 1, 'conflict')
            return {gone, conflicts}
        end
        local ttl = redis.call('PTTL', KEYS[6])
        local until_ms = redis.call('ZSCORE', KEYS[1], held_entry(ARGV[9]))
        local changes = {}
        for i = first_add, first_free - 1 do
            local seat = ARGV[i + 2]
            redis.call('SET', KEYS[i], ARGV[5], 'PX', ttl)
            redis.call('ZADD', KEYS[1], until_ms, held_entry(seat))
            changes[#changes + 1] = {seat, 'held'}
        end
        for i = first_free, #KEYS do
            local seat = ARGV[i + 2]
            if redis.call('GET', KEYS[i]) == ARGV[5] then
                redis.call('DEL', KEYS[i])
                redis.call('ZREM', KEYS[1], held_entry(seat))
                changes[#changes + 1] = {seat, 'available'}
            end
        end
        return {gone, {'changed', bump(changes)}}
        ",
    )
});
