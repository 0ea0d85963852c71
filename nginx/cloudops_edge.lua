-- The edge decision in nginx: the gateway decides, nginx remembers an allowed read briefly.
--
-- Every API request runs `access()` (access_by_lua in nginx.conf.template). The first request
-- of a kind asks the gateway (`/_edge/auth`, a subrequest to GET /_edge/auth, see
-- services/gateway/src/gateway/edge.py): it runs its whole decision chain and names the upstream,
-- the identity to send and the RateLimit headers. When the gateway marks an allowed read as
-- rememberable (X-CloudOps-Edge-Cache), this worker keeps the answer for a few seconds, keyed by
-- everything the decision read: the URI, the credentials, the User-Agent, the Origin, the scheme
-- and the client's address. The same read again is then let through here without a Python
-- process on its path, and still counted in the gateway's own rate-limit window:
--
--   * each request takes one slot of a lease: slots this worker took at once in Redis by running
--     the gateway's own script (by its SHA1) on the gateway's own window. A lease is one slot
--     (every request asks Redis, exactly as the gateway counts) below LEASE_FROM requests per
--     window, and at most limit / LEASE_FROM slots (at most MAX_LEASE) above it, so the headers
--     stay within 0.1% of the exact count while most requests cost no round trip at all;
--   * refused, flagged (honeypot), or decided before the last revocation (the epoch moved): the
--     memory is not used and the gateway decides again, rendering its own problem;
--   * Redis unreachable or the script not loaded: the gateway decides (with its fallback).
--
-- The epoch (bumped in Redis by every key revocation, logout and honeypot flag) is shared by the
-- workers: the gateway's answers carry the newest it knows (a revocation's own answer included,
-- so one made through this nginx is in force at its next request), and each worker reads it from
-- Redis every EPOCH_POLL_SECONDS for revocations made elsewhere.
--
-- A request id and a trace context are made here as the gateway makes them. Nothing is ever
-- remembered for a request with a body, for a refusal, or for longer than the gateway said.
--
-- A read let through this way may also be answered here, with no process behind nginx on its
-- path: the body a service served last for the same memory key, when the service tagged it with
-- the generation of its read cache (common/cache.py, X-CloudOps-Body-Tag) and that generation is
-- still the current one. Every such read asks Redis for the generation after it began (reads in
-- the same turn of this worker's loop share one question, never one already sent), so a write
-- that finished before the read began is always seen, exactly as in the service's own cache.
-- The bodies live in a shared dictionary of fixed size (the oldest go first), each at most as
-- long as the service's tag allows; a read the service never tagged is never kept. The reads
-- answered here are counted in the platform's usage ledger and request-rate history like those
-- a service serves (its meter, common/costtracker.py), under the service that tagged them.

local lrucache = require "resty.lrucache"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local var = ngx.var
local concat = table.concat
local tonumber = tonumber
local tostring = tostring
local re_match = ngx.re.match
local re_find = ngx.re.find
local math_max = math.max
local math_ceil = math.ceil
local find = string.find
local sub = string.sub
local match = string.match
local sha1_bin = ngx.sha1_bin

local _M = {}

local redis = {
    host = "127.0.0.1", port = 6379, db = 0, username = nil, password = nil, prefix = "cloudops:",
}
local REDIS_TIMEOUT_MS = 500
-- After a Redis failure, ask the gateway for this long instead of paying a connect each time.
local REDIS_RETRY_SECONDS = 1
local POOL_SIZE = 256
local LEASE_FROM = 1000
local MAX_LEASE = 64
local EPOCH_POLL_SECONDS = 0.5
local shared = ngx.shared.cloudops_edge
local decisions = nil
local leases = {} -- by window key: this worker's unused slots of it
local refills = {} -- by window key: a refill under way
local asking = {} -- by memory key: a decision the gateway is being asked for
local ASK_WAIT_SECONDS = 1
local epoch_key = nil
local redis_down_until = 0
local pool_name = nil

local ZERO_TRACE = string.rep("0", 32)
local ZERO_SPAN = string.rep("0", 16)

function _M.configure(conf)
    for name, value in pairs(conf) do
        redis[name] = value
    end
    pool_name = "cloudops-edge:" .. redis.host .. ":" .. tostring(redis.port) .. ":" .. tostring(redis.db)
    decisions = assert(lrucache.new(conf.cache_size or 20000))
end

-- --- a minimal Redis client: one command, one reply, a keepalive pool -------------------------

local function command(args)
    local out = { "*", #args, "\r\n" }
    for i = 1, #args do
        local arg = tostring(args[i])
        out[#out + 1] = "$"
        out[#out + 1] = #arg
        out[#out + 1] = "\r\n"
        out[#out + 1] = arg
        out[#out + 1] = "\r\n"
    end
    return concat(out)
end

-- The reply: a number, a string, a table, ngx.null; false and the message for an error reply;
-- nil and the error when the connection failed.
local function read_reply(sock)
    local line, err = sock:receive("*l")
    if not line then
        return nil, err
    end
    local kind, rest = line:sub(1, 1), line:sub(2)
    if kind == ":" then
        return tonumber(rest)
    elseif kind == "$" then
        local size = tonumber(rest)
        if size < 0 then
            return ngx.null
        end
        local data, read_err = sock:receive(size + 2)
        if not data then
            return nil, read_err
        end
        return data:sub(1, size)
    elseif kind == "*" then
        local count = tonumber(rest)
        if count < 0 then
            return ngx.null
        end
        local items = {}
        for i = 1, count do
            local item, item_err = read_reply(sock)
            if item == nil then
                return nil, item_err
            end
            items[i] = item
        end
        return items
    elseif kind == "+" then
        return rest
    elseif kind == "-" then
        return false, rest
    end
    return nil, "unexpected redis reply"
end

local function connect()
    local sock = ngx.socket.tcp()
    sock:settimeouts(REDIS_TIMEOUT_MS, REDIS_TIMEOUT_MS, REDIS_TIMEOUT_MS)
    local ok, err = sock:connect(redis.host, redis.port, { pool = pool_name })
    if not ok then
        return nil, err
    end
    if sock:getreusedtimes() == 0 then
        local setup = {}
        if redis.password then
            if redis.username then
                setup[#setup + 1] = command({ "AUTH", redis.username, redis.password })
            else
                setup[#setup + 1] = command({ "AUTH", redis.password })
            end
        end
        if redis.db ~= 0 then
            setup[#setup + 1] = command({ "SELECT", redis.db })
        end
        if #setup > 0 then
            local sent, send_err = sock:send(concat(setup))
            if not sent then
                sock:close()
                return nil, send_err
            end
            for _ = 1, #setup do
                local reply, reply_err = read_reply(sock)
                if not reply then
                    sock:close()
                    return nil, reply_err or "redis refused the connection's setup"
                end
            end
        end
    end
    return sock
end

local function current_epoch()
    return shared:get("epoch") or -1
end

-- Raise the epoch every worker checks against (never lower it: a late answer from before a
-- revocation must not bring back what the revocation voided).
local function saw_epoch(value)
    local epoch = tonumber(value)
    if epoch and epoch > current_epoch() then
        shared:set("epoch", epoch)
    end
end

-- Send `payload` (`count` encoded commands) on a pooled connection and read every reply: the
-- last one (false for an error reply), or nil when Redis could not be reached.
local function redis_send(payload, count)
    if ngx.now() < redis_down_until then
        return nil
    end
    local sock, err = connect()
    if sock then
        local sent
        sent, err = sock:send(payload)
        if sent then
            local reply
            for _ = 1, count do
                reply, err = read_reply(sock)
                if reply == nil then
                    break
                end
            end
            if reply ~= nil then
                sock:setkeepalive(60000, POOL_SIZE)
                return reply
            end
        end
        sock:close()
    end
    redis_down_until = ngx.now() + REDIS_RETRY_SECONDS
    ngx.log(ngx.WARN, "edge: redis unreachable, the gateway decides: ", err)
    return nil
end

local function redis_call(args)
    local reply = redis_send(command(args), 1)
    if reply == false then
        return nil -- NOSCRIPT after a Redis restart: the gateway loads it again
    end
    return reply
end

-- Run fn(...) as the one call under way for `key` in `under_way` (a table of semaphores): the
-- requests that find it there wait on its semaphore instead of making the same call themselves.
-- Whatever fn does, even raise, the entry is removed and every waiter woken.
local function alone(under_way, key, fn, ...)
    local done = semaphore.new()
    under_way[key] = done
    local ok, first, second = pcall(fn, ...)
    under_way[key] = nil
    local waiting = -done:count()
    if waiting > 0 then
        done:post(waiting)
    end
    if not ok then
        error(first, 0)
    end
    return first, second
end

local function usable(lease, entry, now)
    return lease and lease.left > 0 and lease.epoch == entry.epoch and now < lease.expires
end

-- A lease of slots in the gateway's window for this entry's principal: the lease one slot was
-- taken from for this request (its fields give the RateLimit headers), or nil and why not. One
-- refill per window at a time in a worker: the requests that find it under way wait for it
-- rather than each leasing slots of their own.
local function take_slot(entry, now)
    local bucket = entry.bucket
    for _ = 1, 3 do
        local lease = leases[bucket]
        if usable(lease, entry, now) then
            lease.left = lease.left - 1
            return lease
        end
        local under_way = refills[bucket]
        if not under_way then
            break
        end
        under_way:wait(REDIS_TIMEOUT_MS / 1000)
        now = ngx.now()
    end
    local size = math.floor(entry.limit / LEASE_FROM)
    if size < 1 then
        size = 1
    elseif size > MAX_LEASE then
        size = MAX_LEASE
    end
    local reply = alone(refills, bucket, redis_call, {
        "EVALSHA", entry.sha, 3, bucket, entry.flag_key, entry.epoch_key,
        entry.limit, entry.window_ms, var.request_id, entry.epoch, size,
    })
    if not reply then
        return nil
    end
    saw_epoch(reply[4])
    local taken = reply[1]
    if taken < 1 then
        leases[bucket] = nil
        return nil, taken
    end
    local lease = {
        left = taken - 1,
        remaining = math_max(0, reply[2]),
        reset_at = now + reply[3] / 1000000,
        epoch = entry.epoch,
        expires = now + entry.ttl,
    }
    leases[bucket] = lease
    return lease
end

-- --- request context ----------------------------------------------------------------------------

-- nginx's $request_id is 32 random hex digits: a new trace id, and a span id from its other half.
local function request_context()
    local own = var.request_id
    local request_id = var.http_x_request_id
    if not request_id or not re_find(request_id, [[^[A-Za-z0-9._:-]{1,128}\z]], "jo") then
        request_id = own
    end
    local span = own:sub(17, 32)
    if span == ZERO_SPAN then
        span = "0000000000000001"
    end
    local parent = var.http_traceparent
    if parent then
        local m = re_match(parent,
            [[^\s*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\s*\z]], "jo")
        if m and m[1] ~= "ff" and m[2] ~= ZERO_TRACE and m[3] ~= ZERO_SPAN then
            return request_id, "00-" .. m[2] .. "-" .. span .. "-" .. m[4]
        end
    end
    local trace = own
    if trace == ZERO_TRACE then
        trace = "1" .. trace:sub(2)
    end
    return request_id, "00-" .. trace .. "-" .. span .. "-01"
end

-- --- the decision -------------------------------------------------------------------------------

-- Everything the decision read. No header value holds a newline or a NUL, so no two requests
-- that differ in any of them (a header sent empty and one not sent included) share a key.
local ABSENT = "\0"

local function memory_key()
    return concat({
        var.request_uri,
        var.http_x_api_key or ABSENT,
        var.http_authorization or ABSENT,
        var.http_cookie or ABSENT,
        var.http_user_agent or ABSENT,
        var.http_origin or ABSENT,
        var.scheme,
        var.remote_addr,
    }, "\n")
end

local function send_identity(entry)
    var.cloudops_upstream_name = entry.upstream
    var.cloudops_principal = entry.principal
    var.cloudops_permissions = entry.permissions
    var.cloudops_client_ip = entry.client_ip
    var.cloudops_client_proto = entry.client_proto
end

-- The remembered decision for this read, if it lets the read through now (one slot taken).
-- Past three quarters of its life, the first read to see it (none asking yet) is not let
-- through: it asks the gateway, which decides it (and counts it) anew, while the reads behind it
-- still go on the decision remembered. A busy read never finds its memory gone and waits for
-- the gateway all at once.
local function remembered(key)
    local entry = decisions:get(key)
    if not entry then
        return nil
    end
    if entry.epoch ~= current_epoch() then
        decisions:delete(key) -- a revocation or a flag since it was decided
        return nil
    end
    local now = ngx.now()
    if now >= entry.refresh_at and not asking[key] then
        return nil
    end
    local lease, refused = take_slot(entry, now)
    if not lease then
        if refused ~= 0 then
            decisions:delete(key) -- flagged, revoked since, or not countable now
        end
        return nil -- the gateway decides again and renders its own refusal
    end
    send_identity(entry)
    var.cloudops_request_id, var.cloudops_traceparent = request_context()
    -- What the exact count would say: the slots still leased are not spent yet.
    local remaining = lease.remaining + lease.left
    local reset = math_max(1, math_ceil(lease.reset_at - now))
    var.cloudops_ratelimit_policy = entry.ratelimit_policy
    var.cloudops_ratelimit = entry.quoted_policy .. ";r=" .. remaining .. ";t=" .. reset
    var.cloudops_ratelimit_limit = entry.limit
    var.cloudops_ratelimit_remaining = remaining
    var.cloudops_ratelimit_reset = reset
    return entry
end

-- --- bodies answered here: a service's tagged read, while its generation is current ----------

local bodies = ngx.shared.cloudops_edge_bodies
-- A body larger than this is never kept (the dictionary's size bounds them all together).
local BODY_MAX_BYTES = 256 * 1024
-- X-CloudOps-Body-Tag: the generation's key, the generation, seconds it may be kept, the route.
local TAG = "^(%S+) ([1-9]%d*) ([1-9]%d*) (/%S*)$"
-- By generation key: the questions this worker has out, and the next one, which reads join
-- until it is sent.
local questions = {}
-- By body key: the read this worker sent on to the service to be kept (the others wait for it
-- rather than all going at once when a body is new, expired or outdated), and the reads the
-- service did not tag lately (no one waits for those).
-- (Bounded: a read whose answer ended in an error page loses its context, and so never removes
-- its entry; the next read of that body takes it over after REFILL_WAIT_SECONDS.)
local refilling = assert(lrucache.new(20000))
local untagged = assert(lrucache.new(20000))
local UNTAGGED_SECONDS = 10
local REFILL_WAIT_SECONDS = 1
-- Reads answered here since the last flush: [service \0 principal \0 route] = { n, bytes }
-- and [service \0 minute] = n.
local usage, minutes = {}, {}
local USAGE_FLUSH_SECONDS = 5
local USAGE_LIST_MAX = 100000
local RATE_RETENTION_SECONDS = 8 * 86400

local function new_batch()
    return { done = semaphore.new(), waiting = 0, answer = nil }
end

local function ask_generation(gkey, state, batch)
    state.out = state.out + 1
    local ok, reply = pcall(redis_call, { "GET", gkey })
    state.out = state.out - 1
    if ok and reply and reply ~= ngx.null then
        batch.answer = reply
    end
    -- The reads that came while this question was out: their leader asks for them all now.
    local next_batch = state.next
    if next_batch then
        state.next = nil
        next_batch.lead:post(1)
    end
    if batch.waiting > 0 then
        batch.done:post(batch.waiting)
    end
    return batch.answer
end

-- The generation `gkey` has now, read from Redis after this call began; nil when Redis could
-- not say or the key is gone (the service never tags a body then either). With no question out
-- for it, the read asks at once; otherwise it joins the next question, which its first read
-- sends as soon as the one out comes back, for every read that joined it until then. A read
-- never joins a question already sent, so its answer was read after it began.
local function generation_now(gkey)
    local state = questions[gkey]
    if not state then
        state = { out = 0, next = nil }
        questions[gkey] = state
    end
    if state.out == 0 then
        return ask_generation(gkey, state, new_batch())
    end
    local batch = state.next
    if batch then
        batch.waiting = batch.waiting + 1
        if not batch.done:wait(2 * REDIS_TIMEOUT_MS / 1000) then
            return nil
        end
        return batch.answer
    end
    batch = new_batch()
    batch.lead = semaphore.new()
    state.next = batch
    if not batch.lead:wait(REDIS_TIMEOUT_MS / 1000) and state.next == batch then
        state.next = nil -- the question out is late: ask without it
    end
    return ask_generation(gkey, state, batch)
end

local function count_usage(service, principal, route, nbytes)
    local key = service .. "\0" .. principal .. "\0" .. route
    local entry = usage[key]
    if entry then
        entry[1] = entry[1] + 1
        entry[2] = entry[2] + nbytes
    else
        usage[key] = { 1, nbytes }
    end
    local minute = service .. "\0" .. math.floor(ngx.time() / 60)
    minutes[minute] = (minutes[minute] or 0) + 1
end

-- The stored answer for this read if it is still current: answered here, and true.
local function from_memory(hkey, entry)
    local stored = bodies:get(hkey)
    if not stored then
        return false
    end
    local head_end = find(stored, "\n", 1, true)
    local type_end = find(stored, "\n", head_end + 1, true)
    local gkey, generation, route = match(sub(stored, 1, head_end - 1), "^(%S+) (%d+) (%S+)$")
    if generation_now(gkey) ~= generation then
        return false
    end
    local body = sub(stored, type_end + 1)
    local header = ngx.header
    header["Content-Type"] = sub(stored, head_end + 1, type_end - 1)
    header["Content-Length"] = #body
    header["traceparent"] = var.cloudops_traceparent
    var.cloudops_edge_served = "body"
    count_usage(entry.upstream, entry.principal, route, #body)
    ngx.print(body)
    return true
end

-- The reads waiting for this request's body go on: to the body now kept, or to the service.
local function refilled(ctx)
    local hkey = ctx.edge_key
    local refill = hkey and ctx.edge_refill
    if refill and refilling:get(hkey) == refill then
        refilling:delete(hkey)
    end
    if refill then
        ctx.edge_refill = nil
        local count = -refill.done:count()
        if count > 0 then
            refill.done:post(count)
        end
    end
end

-- header_filter: the service tagged the read this worker may keep (it asked: X-CloudOps-Edge-Body).
local function keep_tagged()
    local ctx = ngx.ctx
    if ngx.status ~= 200 then
        return refilled(ctx)
    end
    local gkey, generation, seconds, route = match(var.upstream_http_x_cloudops_body_tag or "", TAG)
    local length = tonumber(ngx.header["Content-Length"])
    if not gkey or (length and length > BODY_MAX_BYTES) then
        untagged:set(ctx.edge_key, true, UNTAGGED_SECONDS)
        return refilled(ctx)
    end
    ctx.edge_head = gkey .. " " .. generation .. " " .. route .. "\n"
        .. (ngx.header["Content-Type"] or "application/json") .. "\n"
    ctx.edge_seconds = tonumber(seconds)
    ctx.edge_length = length
    ctx.edge_chunks = {}
    ctx.edge_size = 0
    var.cloudops_edge_keep = "1"
end

-- body_filter_by_lua: the tagged body as it passes, kept when it is whole.
function _M.body_filter()
    local keep = var.cloudops_edge_keep
    if keep ~= "1" then
        return
    end
    local ctx = ngx.ctx
    local chunk, eof = ngx.arg[1], ngx.arg[2]
    if chunk ~= "" then
        ctx.edge_size = ctx.edge_size + #chunk
        if ctx.edge_size > BODY_MAX_BYTES then
            var.cloudops_edge_keep = ""
            ctx.edge_chunks = nil
            return refilled(ctx)
        end
        local chunks = ctx.edge_chunks
        chunks[#chunks + 1] = chunk
    end
    if eof then
        var.cloudops_edge_keep = ""
        -- Only the whole body as declared (a connection cut short keeps nothing); set, not
        -- safe_set: the least recently used bodies make room.
        if not ctx.edge_length or ctx.edge_length == ctx.edge_size then
            bodies:set(ctx.edge_key, ctx.edge_head .. concat(ctx.edge_chunks), ctx.edge_seconds)
        end
        ctx.edge_chunks = nil
        refilled(ctx)
    end
end

-- JSON string literal of `value` (a principal or a route: no control characters in either, but
-- escaped all the same).
local function json_string(value)
    return '"' .. value:gsub('[%c"\\]', function(ch)
        return string.format("\\u%04x", ch:byte())
    end) .. '"'
end

-- The platform usage meter's flush (common/costtracker.py), for the reads answered here: the
-- same list the costs service drains, the same request-rate hashes. What Redis did not take is
-- counted again with the next flush.
local function flush_usage(premature)
    if next(usage) == nil and next(minutes) == nil then
        return
    end
    local pending, counts = usage, minutes
    usage, minutes = {}, {}
    local day = os.date("!%Y-%m-%d", ngx.time())
    local rows = {}
    for key, entry in pairs(pending) do
        local service, principal, route = match(key, "^([^%z]*)%z([^%z]*)%z(.*)$")
        local list = rows[service] or {}
        rows[service] = list
        list[#list + 1] = "[" .. json_string(day) .. "," .. json_string(principal:sub(1, 128))
            .. "," .. json_string(route) .. "," .. entry[1] .. ',"0","0",' .. entry[2] .. "]"
    end
    local batch = {}
    local list_key = redis.prefix .. "platform:usage"
    for service, list in pairs(rows) do
        batch[#batch + 1] = command({ "RPUSH", list_key,
            '{"service":' .. json_string(service) .. ',"rows":[' .. concat(list, ",") .. "]}" })
        batch[#batch + 1] = command({ "LTRIM", list_key, -USAGE_LIST_MAX, -1 })
    end
    for key, n in pairs(counts) do
        local service, minute = match(key, "^([^%z]*)%z(%d+)$")
        local hash = redis.prefix .. "platform:rate:" .. service .. ":" .. math.floor(minute / 60)
        batch[#batch + 1] = command({ "HINCRBY", hash, minute, n })
        batch[#batch + 1] = command({ "EXPIRE", hash, RATE_RETENTION_SECONDS })
    end
    if redis_send(concat(batch), #batch) ~= nil then
        return
    end
    -- Not taken: back into the counts, for the next flush (or the one at exit).
    for key, entry in pairs(pending) do
        local mine = usage[key]
        if mine then
            mine[1], mine[2] = mine[1] + entry[1], mine[2] + entry[2]
        else
            usage[key] = entry
        end
    end
    for key, n in pairs(counts) do
        minutes[key] = (minutes[key] or 0) + n
    end
    if premature then
        ngx.log(ngx.WARN, "edge: the usage of reads answered here was not flushed")
    end
end

-- A read let through by a remembered decision: answered here from the body kept for it, or sent
-- on asking the service for its tag, so that its body is kept for the next one.
local function from_remembered(key, entry)
    -- Only a GET: a HEAD is decided as the GET it reads, but its answer has no body to keep.
    if not bodies or ngx.req.get_method() ~= "GET" then
        return
    end
    local hkey = sha1_bin(key)
    if from_memory(hkey, entry) then
        return ngx.exit(ngx.HTTP_OK)
    end
    local ctx = ngx.ctx
    ctx.edge_key = hkey
    var.cloudops_edge_body = "1"
    if untagged:get(hkey) then
        return -- the service answers these itself every time: no one waits for another
    end
    local under_way = refilling:get(hkey)
    -- (One older than the wait was lost on its way, in an error page, say: this read takes over.)
    if under_way and ngx.now() - under_way.since < REFILL_WAIT_SECONDS then
        -- The same body is on its way from the service: wait for it, then check it like any other.
        under_way.done:wait(REFILL_WAIT_SECONDS)
        if from_memory(hkey, entry) then
            return ngx.exit(ngx.HTTP_OK)
        end
        return -- not kept after all: to the service, asking for the tag again
    end
    local refill = { done = semaphore.new(), since = ngx.now() }
    refilling:set(hkey, refill)
    ctx.edge_refill = refill
end

local function lowered(headers)
    local out = {}
    for name, value in pairs(headers) do
        if type(value) == "table" then
            value = value[1]
        end
        out[name:lower()] = value
    end
    return out
end

local function remember(key, h)
    local fields = {}
    for field in (h["x-cloudops-edge-cache"] .. "\t"):gmatch("([^\t]*)\t") do
        fields[#fields + 1] = field
    end
    local ttl = tonumber(fields[1])
    if #fields ~= 9 or not ttl or ttl <= 0 then
        return
    end
    local quoted_policy = '"' .. fields[3] .. '"'
    decisions:set(key, {
        upstream = h["x-cloudops-upstream"],
        principal = h["x-cloudops-principal"] or "",
        permissions = h["x-cloudops-permissions"] or "",
        client_ip = h["x-forwarded-for"] or "",
        client_proto = h["x-forwarded-proto"] or "",
        sha = fields[2],
        quoted_policy = quoted_policy,
        ratelimit_policy = quoted_policy .. ";q=" .. fields[4] .. ";w=" .. (tonumber(fields[5]) / 1000),
        limit = tonumber(fields[4]),
        window_ms = fields[5],
        ttl = ttl,
        epoch = tonumber(fields[6]),
        refresh_at = ngx.now() + ttl * 0.75,
        bucket = fields[7],
        flag_key = fields[8],
        epoch_key = fields[9],
    }, ttl)
    epoch_key = fields[9]
end

-- Ask the gateway (the subrequest never carries the body; what the client declared of it is
-- passed along in variables, as a subrequest of its own would drop it).
local function ask(key)
    local answer = ngx.location.capture("/_edge/auth", {
        vars = {
            cloudops_original_length = var.http_content_length or "",
            cloudops_original_transfer_encoding = var.http_transfer_encoding or "",
        },
    })
    if answer.status ~= 204 and answer.status ~= 200 then
        return false -- the gateway could not decide
    end
    local h = lowered(answer.header)
    saw_epoch(h["x-cloudops-edge-epoch"])
    local upstream = h["x-cloudops-upstream"] or "gateway"
    var.cloudops_upstream_name = upstream
    var.cloudops_principal = h["x-cloudops-principal"] or ""
    var.cloudops_permissions = h["x-cloudops-permissions"] or ""
    var.cloudops_client_ip = h["x-forwarded-for"] or ""
    var.cloudops_client_proto = h["x-forwarded-proto"] or ""
    var.cloudops_request_id = h["x-request-id"] or ""
    var.cloudops_traceparent = h["traceparent"] or ""
    var.cloudops_ratelimit_policy = h["ratelimit-policy"] or ""
    var.cloudops_ratelimit = h["ratelimit"] or ""
    var.cloudops_ratelimit_limit = h["ratelimit-limit"] or ""
    var.cloudops_ratelimit_remaining = h["ratelimit-remaining"] or ""
    var.cloudops_ratelimit_reset = h["ratelimit-reset"] or ""
    if key and upstream ~= "gateway" and h["x-cloudops-edge-cache"] then
        remember(key, h)
    end
    return true
end

-- The gateway's answer, or nginx's own 503 problem (Retry-After: 1) when there was none. With a
-- memory key, the one question under way for it: the same reads arriving meanwhile wait for it.
local function decide(key)
    local answered
    if key then
        answered = alone(asking, key, ask, key)
    else
        answered = ask(nil)
    end
    if not answered then
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
    end
end

-- --- admission: a bounded number of API requests in at once, a short line for the rest --------

local QUEUE_WAIT_SECONDS = 0.6
local slots = nil

local function admitted()
    if not slots or var.cloudops_api_slot == "" then
        return true
    end
    if not slots:wait(QUEUE_WAIT_SECONDS) then
        return false
    end
    var.cloudops_admitted = "1"
    return true
end

-- log_by_lua: the place of a request that got in goes to the next in line.
function _M.release()
    if slots and var.cloudops_admitted == "1" then
        var.cloudops_admitted = ""
        slots:post(1)
    end
    if var.cloudops_edge_body == "1" then
        refilled(ngx.ctx) -- whatever became of the answer (an error, a client gone)
    end
end

function _M.access()
    if not admitted() then
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE) -- nginx's own 503 problem, Retry-After: 1
    end
    local method = ngx.req.get_method()
    if not decisions or (method ~= "GET" and method ~= "HEAD") or var.http_transfer_encoding then
        return decide(nil)
    end
    local length = var.http_content_length
    if length ~= nil and length ~= "0" then
        return decide(nil)
    end
    local key = memory_key()
    local entry = remembered(key)
    if entry then
        return from_remembered(key, entry)
    end
    -- The same read asked already and not answered yet (many clients at once, or this one's
    -- memory just expired): wait for that answer rather than asking the gateway again.
    local under_way = asking[key]
    if under_way then
        under_way:wait(ASK_WAIT_SECONDS)
        entry = remembered(key)
        if entry then
            return from_remembered(key, entry)
        end
        return decide(nil)
    end
    return decide(key)
end

-- header_filter_by_lua: a revocation's answer carries the new epoch; it is for nginx only. A
-- read sent on asking for its tag may be kept.
function _M.header_filter()
    local epoch = ngx.header["X-CloudOps-Edge-Epoch"]
    if epoch then
        saw_epoch(epoch)
        ngx.header["X-CloudOps-Edge-Epoch"] = nil
    end
    if var.cloudops_edge_body == "1" then
        keep_tagged()
    end
end

-- init_worker_by_lua: revocations made through another nginx or the gateway's own port.
local function poll_epoch(premature)
    if premature or not epoch_key then
        return
    end
    local reply = redis_call({ "GET", epoch_key })
    if reply and reply ~= ngx.null then
        saw_epoch(reply)
    end
end

-- init_worker_by_lua: this worker's share of the API requests let in at once, and the poll.
function _M.init_worker(max_in_flight)
    if max_in_flight then
        slots = semaphore.new(math.max(1, math.ceil(max_in_flight / ngx.worker.count())))
    end
    ngx.timer.every(EPOCH_POLL_SECONDS, poll_epoch)
    ngx.timer.every(USAGE_FLUSH_SECONDS, flush_usage)
end

return _M
