-- wrk script for the OCCI bench: the request comes from environment variables so that one
-- script serves every scenario, and the summary is printed as one JSON line for bench/run.py.
--   BENCH_METHOD     GET, POST, ... (default GET)
--   BENCH_PATH       path with query string
--   BENCH_BODY_FILE  file holding the request body (optional)
--   BENCH_HEADERS    header lines "Name: value" separated by "\n"
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local headers = {}
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
local body = nil
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end

request = function()
  return wrk.format(method, path, headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f, "max_us": %d, "err_connect": %d, "err_read": %d, ' ..
    '"err_write": %d, "err_status": %d, "err_timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write,
    e.status, e.timeout))
end
