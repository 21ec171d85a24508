-- wrk script for eventrelay's Tracking API: every request carries fresh messageIds (dedup would
-- drop repeats). Environment (set by bench/wrk_bench.py):
--   EVENTRELAY_AUTH   the Authorization header value (Basic, the write key)
--   EVENTRELAY_EVENT  a file holding one event as JSON with the placeholder @ID@ for its messageId
--   EVENTRELAY_BATCH  0: POST /v1/track with one event; N > 0: POST /v1/batch with N events
-- At the end each thread's counts are summed and printed as one line: "RESULT <json>".

local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("EVENTRELAY_EVENT"), "r"))
  template = f:read("*a")
  f:close()
  batch = tonumber(os.getenv("EVENTRELAY_BATCH") or "0")
  prefix = string.format("wrk-%d-%d-", tid, math.random(1, 1000000000))
  sent = 0
  ok = 0
  refused = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("EVENTRELAY_AUTH")
  wrk.path = batch > 0 and "/v1/batch" or "/v1/track"
end

local function event()
  sent = sent + 1
  return (template:gsub("@ID@", prefix .. sent))
end

function request()
  local body
  if batch > 0 then
    local items = {}
    for i = 1, batch do
      items[i] = event()
    end
    body = '{"batch":[' .. table.concat(items, ",") .. "]}"
  else
    body = event()
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local ok_total, refused_total = 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    refused_total = refused_total + thread:get("refused")
  end
  io.write(string.format(
    'RESULT {"requests": %d, "ok": %d, "refused": %d, "socket_errors": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f}\n',
    summary.requests, ok_total, refused_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
