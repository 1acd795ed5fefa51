-- wrk script: POST the same JSON body on every request (the predictor alone, the empty
-- kserve.Model, MLServer). Used by devtools/bench/; by hand:
--
--   BODY_FILE=body.json wrk -t1 -c8 -d10s --latency -s bench/post.lua \
--     http://127.0.0.1:8085/v2/models/click-model/infer
--
-- env: BODY_FILE (required): the request body. The request is formatted once by wrk itself
-- (no request() callback, no response() callback): the cheapest way wrk can send.
-- done() prints the same JSON line as infer.lua (latencies in µs).
local path = os.getenv("BODY_FILE")
if not path then error("post.lua: set BODY_FILE to the request body") end
local f = assert(io.open(path, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"stdev":%.1f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.stdev, latency.max))
end
