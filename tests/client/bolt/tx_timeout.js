// tx_timeout.js - the tx_timeout of an auto-commit Bolt RUN, through the
// official Neo4j JavaScript driver (session.run(q, {}, {timeout})), run by
// tests/integration/statement_time.sh:
// - on node HIGH (statement_time_ms 600 s) a long read with a 700 ms
//   timeout fails with TransactionTimedOut naming 700 ms within a few
//   seconds, while the same read started beside it with an 8,000 ms
//   timeout is still running (the read does not end by itself; its own
//   timeout only keeps it from burning a core for 600 s): it fails later,
//   naming 8000 ms;
// - on node LOW (statement_time_ms LOW_MS) a timeout of 20 s does not
//   raise the node's limit: the read fails naming LOW_MS ms.
// Usage: node tx_timeout.js NET HIGH LOW LOW_MS
// Prints "ok: ..." per check, "FAIL: ..." per failure; exit 1 on any.
'use strict';
const neo4j = require('neo4j-driver');

const [net, high, low, lowMs] = process.argv.slice(2);
const AUTH = neo4j.auth.basic(process.env.LORA_USER || 'admin',
  process.env.LORA_PASSWORD || '');
const LONG = 'UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c';
const TIMED_OUT = 'Neo.ClientError.Transaction.TransactionTimedOut';
let fails = 0;
const check = (what, cond, detail) => {
  if (cond) {
    console.log(`ok: ${what}`);
  } else {
    fails++;
    console.log(`FAIL: ${what}: ${detail}`);
  }
};

// longRead(driver, timeoutMs): LONG as an auto-commit RUN with that
// tx_timeout; resolves to {ms, code, message} when it ends, either way.
async function longRead(driver, timeoutMs) {
  const session = driver.session();
  const t0 = Date.now();
  try {
    const r = await session.run(LONG, {}, { timeout: timeoutMs });
    return { ms: Date.now() - t0, code: 'none', message: `rows ${r.records.length}` };
  } catch (e) {
    return { ms: Date.now() - t0, code: e.code, message: e.message };
  } finally {
    await session.close();
  }
}
const show = (r) => `${r.ms} ms, ${r.code}: ${r.message}`;
// settle(read, ms): the read's end, or that it still ran after ms (the
// read goes on: process.exit ends this client whatever is left)
const settle = (read, ms) => Promise.race([read, new Promise((res) => setTimeout(
  () => res({ ms, code: 'none', message: `still running after ${ms} ms` }), ms))]);

async function main() {
  const hi = neo4j.driver(`bolt://${net}.${high}:7687`, AUTH, { connectionTimeout: 5000 });
  let ended = false;
  const beside = longRead(hi, 8000).then((r) => { ended = true; return r; });
  const timed = await settle(longRead(hi, 700), 10000);
  const besideEnded = ended;
  console.log(`tx_timeout 700 on node ${high}: ${show(timed)}`);
  check('tx_timeout 700 on a 600 s node: TransactionTimedOut naming 700 ms',
        timed.code === TIMED_OUT && / 700 ms/.test(timed.message), show(timed));
  check('within a few seconds', timed.ms < 7000, show(timed));
  check('while the same read beside it (timeout 8000) still ran', !besideEnded,
        'it had ended');

  // while the read beside it runs out its time
  const lo = neo4j.driver(`bolt://${net}.${low}:7687`, AUTH, { connectionTimeout: 5000 });
  const raised = await settle(longRead(lo, 20000), 15000);
  console.log(`tx_timeout 20000 on node ${low}: ${show(raised)}`);
  check(`tx_timeout 20000 does not raise node ${low}'s ${lowMs} ms`,
        raised.code === TIMED_OUT && new RegExp(` ${lowMs} ms`).test(raised.message),
        show(raised));

  const b = await settle(beside, 15000);
  console.log(`tx_timeout 8000 on node ${high}: ${show(b)}`);
  check('the read beside it ends with its own 8000 ms',
        b.code === TIMED_OUT && / 8000 ms/.test(b.message), show(b));
  process.exit(fails ? 1 : 0);
}

main().catch((e) => { console.log(`FAIL: ${e.stack}`); process.exit(1); });
