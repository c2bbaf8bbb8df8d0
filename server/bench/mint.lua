-- wrk script: POST a mint per request (keyseal serve, /v1/licenses).
-- KEYSEAL_TOKEN and KEYSEAL_CUSTOMER come from server/bench/load.sh.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEYSEAL_TOKEN")
wrk.body = '{"product":"acme-cad","customer_id":"' .. os.getenv("KEYSEAL_CUSTOMER") ..
    '","plan":"pro","expires":"365d","entitlements":["export","sso"]}'

local created, other = 0, 0
function response(status, headers, body)
    if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
    io.write(string.format("mints: %d requests, %.0f mints/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
        summary.requests, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end

-- KEYSEAL_DELAY_MS: each connection waits this long after each answer, so
-- the load is a steady rate below what the service can take (the webhook
-- bench measures latency there as well as at saturation).
local pause = tonumber(os.getenv("KEYSEAL_DELAY_MS") or "")
if pause then
    function delay()
        return pause
    end
end
