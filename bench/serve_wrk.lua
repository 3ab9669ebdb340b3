-- Prints wrk's summary as one JSON line, so serve_bench.py reads exact numbers.
-- With WRK_TREE=N set, each request asks for a random file of a tree-N site.
local tree = tonumber(os.getenv("WRK_TREE") or "")

if tree then
  request = function()
    local i = math.random(0, tree - 1)
    local path = string.format("/d%03d/s%02d/file-%d.css", math.floor(i / 1000), math.floor(i / 50) % 20, i)
    return wrk.format("GET", path)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"bytes":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
