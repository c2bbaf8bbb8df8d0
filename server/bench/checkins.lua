-- wrk script: POST the check-ins server/bench/checkins_prepare.py signed,
-- in file order (KEYSEAL_CHECKINS names the file). Each thread takes every
-- other line, so the two threads never send one seat's check-ins at once.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local bodies = {}
for line in io.lines(os.getenv("KEYSEAL_CHECKINS")) do bodies[#bodies + 1] = line end
local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end

function init(args)
    index = id + 1
end

function request()
    local body = bodies[index]
    if body == nil then
        body = bodies[1]  -- ran out: a replay, refused (403), counted as an error
    end
    index = index + 2
    return wrk.format(nil, "/v1/public/leases/check-in", nil, body)
end

local ok, other = 0, 0
function response(status, headers, body)
    if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
    io.write(string.format("check-ins: %d requests, %.0f check-ins/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
        summary.requests, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
