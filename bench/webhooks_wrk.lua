-- wrk script for bench/webhooks_bench.py: POSTs pre-signed Stripe events.
-- WEBHOOK_BODIES names a file of lines "<Stripe-Signature>\t<JSON body>"; each wrk thread
-- takes every n-th line (no two threads send the same event) and cycles through its share.
local path = os.getenv("WEBHOOK_BODIES")
local nthreads, created = 0, {}

function setup(thread)
  thread:set("index", nthreads)
  nthreads = nthreads + 1
  table.insert(created, thread)
  for _, t in ipairs(created) do t:set("threads", nthreads) end
end

function init(args)
  reqs, sent = {}, 0
  local i = 0
  for line in io.lines(path) do
    if i % threads == index then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Stripe-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    i = i + 1
  end
end

function request()
  sent = sent + 1
  return reqs[(sent - 1) % #reqs + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
