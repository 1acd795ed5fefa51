-- wrk script: POST v2 inference to the transformer for rotating user ids (1..USERS), BATCH
-- users per request. Used by devtools/bench/ (make bench); also works by hand:
--
--   USERS=10000 BATCH=1 CACHE=false wrk -t1 -c8 -d10s --latency -s bench/infer.lua \
--     http://127.0.0.1:8080/v2/models/click-model/infer
--
-- env: USERS (default 10000), BATCH (default 1), CACHE ("false" bypasses the prediction
--      cache), FIXED_USER (send the same user every time), SESSION_S (default 35.0) and
--      HOUR (default 20): the request context (the cache key includes it).
--
-- Low CPU on the load-generator side: every distinct request (at most MAX_BODIES) is built
-- once when the thread starts; request() only hands the next prebuilt string to wrk. No
-- response() callback, so wrk never parses the bodies it receives.
-- done() prints one line: JSON {"requests":..,"duration_us":..,"p50":..,...} (latencies in µs).
local users = tonumber(os.getenv("USERS") or "10000")
local batch = tonumber(os.getenv("BATCH") or "1")
local cache = os.getenv("CACHE") or "true"
local fixed = os.getenv("FIXED_USER")
local session_s = os.getenv("SESSION_S") or "35.0"
local hour = os.getenv("HOUR") or "20"
local MAX_BODIES = 20000

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local function body(first)
  local ids, durs, hours = {}, {}, {}
  for i = 0, batch - 1 do
    ids[#ids + 1] = tostring(((first + i) % users) + 1)
    durs[#durs + 1] = session_s
    hours[#hours + 1] = hour
  end
  return string.format(
    '{"inputs":[{"name":"user_id","datatype":"INT64","shape":[%d],"data":[%s]},' ..
    '{"name":"session_duration_s","datatype":"FP64","shape":[%d],"data":[%s]},' ..
    '{"name":"hour_of_day","datatype":"INT64","shape":[%d],"data":[%s]}],' ..
    '"parameters":{"cache":%s}}',
    batch, table.concat(ids, ","), batch, table.concat(durs, ","), batch,
    table.concat(hours, ","), cache)
end

local reqs, n, counter = {}, 0, 0

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

init = function(args)
  if fixed then
    reqs[1] = wrk.format(nil, nil, nil, body(tonumber(fixed) - 1))
    n = 1
    return
  end
  -- batches start at 0, batch, 2*batch, ... (mod users): that cycle has this many bodies
  n = math.min(users / gcd(users, batch), MAX_BODIES)
  for k = 0, n - 1 do
    reqs[k + 1] = wrk.format(nil, nil, nil, body(k * batch))
  end
end

request = function()
  counter = counter + 1
  return reqs[((counter - 1) % n) + 1]
end

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
