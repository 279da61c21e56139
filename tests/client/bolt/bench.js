// bench.js - the JavaScript side of tests/bench/bench_protocols.sh (run on
// demand, never by the suite). Usage:
//   node bench.js lookup-bolt NET NODE COUNT KEYS   point lookups, Bolt
//   node bench.js lookup-http NET NODE COUNT KEYS   the same over HTTP
//   node bench.js writes-bolt NET CLIENTS SECONDS   CREATE from CLIENTS
//                                                   sessions (neo4j://),
//                                                   auto-commit
//   node bench.js writes-bolt-tx ...                the same in managed
//                                                   transactions
//   node bench.js tx-bolt NET NODE COUNT            explicit write
//                                                   transactions one at a
//                                                   time, bolt:// to NODE
//   node bench.js cdc-lag NET LEADER FOLLOWER COUNT one write at a time
//        (HTTP, to LEADER) while GET /changes streams from FOLLOWER: the
//        time from each acknowledgement to its event
// Prints one line of figures. Credentials from LORA_USER / LORA_PASSWORD;
// ids from LORA_SEED.
'use strict';
const neo4j = require('neo4j-driver');
const http = require('http');

const USER = process.env.LORA_USER || 'admin';
const PASSWORD = process.env.LORA_PASSWORD || '';
const AUTH = neo4j.auth.basic(USER, PASSWORD);
const BASIC = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
let state = Number(process.env.LORA_SEED || Date.now()) >>> 0 || 1;
const rnd = (n) => {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state % n;
};
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const figures = (name, us) => {
  us.sort((a, b) => a - b);
  const mean = us.reduce((a, b) => a + b, 0) / us.length;
  return `${name} n=${us.length} p50_us=${pct(us, 0.5).toFixed(0)} ` +
    `p99_us=${pct(us, 0.99).toFixed(0)} mean_us=${mean.toFixed(0)}`;
};
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(host, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host, port: 4747, path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', Authorization: BASIC,
        'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function lookupBolt(net, node, count, keys) {
  const driver = neo4j.driver(`bolt://${net}.${node}:7687`, AUTH);
  const session = driver.session({ defaultAccessMode: neo4j.session.READ });
  const us = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const r = await session.run('MATCH (p:P {id: $id}) RETURN p.name AS name',
      { id: neo4j.int(rnd(keys)) });
    us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (r.records.length !== 1) throw new Error('lookup found nothing');
  }
  await session.close();
  await driver.close();
  console.log(figures('bolt', us));
}

async function lookupHttp(net, node, count, keys) {
  const us = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const r = await post(`${net}.${node}`, '/query', {
      query: 'MATCH (p:P {id: $id}) RETURN p.name AS name', params: { id: rnd(keys) } });
    us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    if (r.status !== 200 || !r.body.includes('"name"')) throw new Error(r.body);
  }
  console.log(figures('http', us));
}

async function writesBolt(net, clients, secs, auto) {
  const driver = neo4j.driver(`neo4j://${net}.1:7687`, AUTH, {
    resolver: () => [1, 2, 3].map((i) => `${net}.${i}:7687`),
    maxConnectionPoolSize: clients + 8,
  });
  const end = Date.now() + secs * 1000;
  let done = 0, failed = 0;
  const us = [];
  const worker = async (c) => {
    const session = driver.session({ defaultAccessMode: neo4j.session.WRITE });
    for (let k = 0; Date.now() < end; k++) {
      const t0 = process.hrtime.bigint();
      try {
        const params = { c: neo4j.int(c), k: neo4j.int(k) };
        if (auto) // auto-commit: the writer's group commit batches them
          await session.run('CREATE (:B {c: $c, k: $k})', params);
        else // a managed transaction: BEGIN, RUN, COMMIT, one at a time
          await session.executeWrite((tx) => tx.run('CREATE (:B {c: $c, k: $k})', params));
        us.push(Number(process.hrtime.bigint() - t0) / 1e3);
        done++;
      } catch (e) {
        failed++;
      }
    }
    await session.close();
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => worker(c)));
  const s = (Date.now() - t0) / 1000;
  await driver.close();
  console.log(`bolt-writes-${auto ? 'auto' : 'tx'} clients=${clients} writes/s=${(done / s).toFixed(0)} ` +
    `failed=${failed} ${figures('latency', us).replace(/^latency /, '')}`);
}

async function cdcLag(net, leader, follower, count) {
  const r0 = await post(`${net}.${leader}`, '/query', { query: 'RETURN 1' });
  const from = JSON.parse(r0.body).bookmark;
  const seen = new Map(); // request id -> ms the event arrived
  const waiters = new Map();
  const sub = http.get({ host: `${net}.${follower}`, port: 4747,
    path: `/changes?from=${from}`, headers: { Authorization: BASIC } }, (res) => {
    let buf = '';
    res.on('data', (chunk) => {
      const now = performance.now();
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        for (const id of JSON.parse(line).requestIds || []) {
          seen.set(id, now);
          const w = waiters.get(id);
          if (w) w();
        }
      }
    });
  });
  sub.on('error', () => {});
  const lag = [];
  let early = 0; // events that arrived before the write's answer
  for (let i = 0; i < count; i++) {
    const id = `lag-${i}`;
    const arrived = new Promise((resolve) => waiters.set(id, resolve));
    const r = await post(`${net}.${leader}`, '/query',
      { query: 'CREATE (:L {i: $i})', params: { i }, requestId: id });
    const acked = performance.now();
    if (r.status !== 200) throw new Error(r.body);
    await arrived;
    early += seen.get(id) < acked;
    lag.push(Math.max(0, seen.get(id) - acked) * 1000);
  }
  sub.destroy();
  console.log(`${figures('cdc-lag', lag)} before_ack=${early}`);
}

// COUNT write transactions one after another over bolt:// to NODE (a
// follower relays them to the leader, node/bolt_relay.c): a CREATE and a
// read of it, committed; the latency of each executeWrite
async function txBolt(net, node, count) {
  const driver = neo4j.driver(`bolt://${net}.${node}:7687`, AUTH);
  const s = driver.session();
  const us = [];
  try {
    for (let i = 0; i < count + 20; i++) {
      const t0 = performance.now();
      await s.executeWrite(async (t) => {
        await t.run('CREATE (:TxB {i: $i})', { i });
        await t.run('MATCH (n:TxB {i: $i}) RETURN count(n)', { i });
      });
      if (i >= 20) us.push((performance.now() - t0) * 1000); // warmed up
    }
  } finally {
    await s.close();
    await driver.close();
  }
  console.log(figures(`tx-bolt node=${node}`, us));
}

const [mode, ...a] = process.argv.slice(2);
const run = {
  'lookup-bolt': () => lookupBolt(a[0], a[1], Number(a[2]), Number(a[3])),
  'lookup-http': () => lookupHttp(a[0], a[1], Number(a[2]), Number(a[3])),
  'writes-bolt': () => writesBolt(a[0], Number(a[1]), Number(a[2]), true),
  'writes-bolt-tx': () => writesBolt(a[0], Number(a[1]), Number(a[2]), false),
  'cdc-lag': () => cdcLag(a[0], a[1], a[2], Number(a[3])),
  'tx-bolt': () => txBolt(a[0], a[1], Number(a[2])),
}[mode];
if (!run) {
  console.error('usage: node bench.js lookup-bolt|lookup-http|writes-bolt|tx-bolt|cdc-lag ...');
  process.exit(2);
}
run().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
