-- With WRK_PAUSE_MS set, each connection waits that long between requests (a paced load whose
-- latencies show service time rather than the queue of a saturated server).
local pause = tonumber(os.getenv("WRK_PAUSE_MS") or "")
if pause then
  delay = function() return pause end
end

-- Prints one JSON line with throughput and latency percentiles (microseconds) after a wrk run.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "errors": %d, "non2xx": %d, ' ..
    '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, seconds, summary.requests / seconds,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
