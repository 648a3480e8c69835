// Node's built-in fetch (undici) as a client of the LB, as an application would use it: the
// global dispatcher (keep-alive), default settings, a request every 1/RATE s, until stdin closes.
// One JSON line per request on stdout, the same shape as simulation/clients.py prints.
// Usage: node fetch_client.mjs URL RATE
const [url, rateText] = process.argv.slice(2);
const interval = 1000 / Number(rateText);
let stopping = false;
process.stdin.on("end", () => { stopping = true; });
process.stdin.resume();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let nextAt = performance.now();
while (!stopping) {
  const start = Date.now() / 1000;
  let record;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
    await response.arrayBuffer();
    record = { status: response.status, upstream: response.headers.get("x-upstream-addr") || "", error: null };
  } catch (error) {
    const cause = error.cause ? `${error.cause.code || error.cause.name}: ${error.cause.message}` : error.message;
    record = { status: 0, upstream: "", error: `${error.name}: ${cause}`.slice(0, 200) };
  }
  process.stdout.write(JSON.stringify({ kind: "fetch", start, end: Date.now() / 1000, ...record }) + "\n");
  nextAt += interval;
  const delay = nextAt - performance.now();
  if (delay > 0) await sleep(delay); else nextAt = performance.now();
}
process.exit(0);
