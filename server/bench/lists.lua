-- wrk script: GET an organisation's public revocation list (no token), with
-- If-None-Match when KEYSEAL_ETAG is set (what an app that cached the list
-- sends). With KEYSEAL_CLIENTS=N, requests say (X-Forwarded-For, to a
-- service that trusts this proxy) they come from N addresses in turn.
-- Used by server/bench/lists.sh.
local etag = os.getenv("KEYSEAL_ETAG")
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end
local clients = tonumber(os.getenv("KEYSEAL_CLIENTS") or "0")
local n = 0
if clients > 0 then
    request = function()
        n = n + 1
        wrk.headers["X-Forwarded-For"] = "198.51.100." .. (n % clients + 1)
        return wrk.format()
    end
end

local good, other = 0, 0
function response(status, headers, body)
    if status == 200 or status == 304 then good = good + 1 else other = other + 1 end
end

function done(summary, latency, requests)
    io.write(string.format("lists: %d requests, %.0f requests/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
        summary.requests, summary.requests / (summary.duration / 1e6),
        summary.bytes / (summary.duration / 1e6) / 1e6,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
