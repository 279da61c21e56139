// bolt_test.js - the official Neo4j JavaScript driver against a LoraDB-C
// cluster (run by tests/client/bolt_driver.sh). Usage:
//   node bolt_test.js PHASE NET LEADER FOLLOWER [LEADER_PID]
// PHASE values:   every value type written and read back over bolt:// (a
//                 follower: writes are forwarded), error codes, read
//                 transactions, bookmarks across sessions
// PHASE routing:  neo4j:// through a follower: writes reach the leader
// PHASE tx:       explicit write transactions: own writes visible inside,
//                 invisible outside until COMMIT, ROLLBACK and a failed
//                 statement leave nothing, 8 clients' read-modify-write
//                 transactions lose no update, the commit's bookmark
// PHASE raw:      the protocol by hand: version negotiation, a malformed
//                 request (FAILURE, then closed), an oversized one
//                 (closed), a PULL with nothing to pull, IGNORED, RESET
// PHASE limit:    FOLLOWER's node allows LEADER_PID connections: that
//                 many handshake, the next is closed unanswered
// PHASE failover: the leader is killed (LEADER_PID) inside a write
//                 transaction: the driver's retry reaches the new leader
// PHASE followertx: bolt:// to the follower alone: write transactions
//                 begun there run on the leader (own writes, unseen
//                 outside before COMMIT, then on every node; ROLLBACK and
//                 a thrown transaction function leave nothing; 8 clients'
//                 read-modify-write lose no update)
// PHASE followermove: bolt:// to the follower alone; leadership moves
//                 to the third node inside a write transaction: a
//                 retryable error, executeWrite's retry commits once
// PHASE followerkill: bolt:// to the follower alone; the leader
//                 (LEADER_PID) is killed inside a write transaction: a
//                 retryable error, executeWrite's retry commits once
// Prints "ok: ..." per check, "FAIL: ..." per failure; exit 1 on any.
'use strict';
const neo4j = require('neo4j-driver');

const [phase, net, leader, follower, leaderPid] = process.argv.slice(2);
const addr = (id) => `${net}.${id}:7687`;
let fails = 0;
const ok = (what) => console.log(`ok: ${what}`);
// authentication is on: lib.sh exports the admin's credentials
const USER = process.env.LORA_USER || 'admin';
const PASSWORD = process.env.LORA_PASSWORD || '';
const AUTH = neo4j.auth.basic(USER, PASSWORD);
const fail = (what, detail) => {
  fails++;
  console.log(`FAIL: ${what}${detail === undefined ? '' : ': ' + detail}`);
};
const check = (what, cond, detail) => (cond ? ok(what) : fail(what, detail));

// Structural equality that knows the driver's Integer and temporal types
// (compared through their ISO strings) and typed arrays.
function same(a, b) {
  if (neo4j.isInt(a) || neo4j.isInt(b))
    return neo4j.isInt(a) && neo4j.isInt(b) && a.equals(b);
  if (a instanceof Int8Array || b instanceof Int8Array)
    return a.length === b.length && a.every((x, i) => x === b[i]);
  // a DateTime sent with a zone name alone comes back with the zone's
  // offset as well: the same wall-clock time and zone
  if (a instanceof neo4j.types.DateTime && a.timeZoneId)
    return b instanceof neo4j.types.DateTime && b.timeZoneId === a.timeZoneId &&
      ['year', 'month', 'day', 'hour', 'minute', 'second', 'nanosecond']
        .every((k) => same(neo4j.int(a[k]), neo4j.int(b[k])));
  if (a && typeof a === 'object' && a.constructor &&
      /^(Date|Time|LocalTime|DateTime|LocalDateTime|Duration)$/.test(a.constructor.name))
    return b && a.constructor.name === b.constructor.name && a.toString() === b.toString();
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}
const show = (v) => JSON.stringify(v, (k, x) =>
  (neo4j.isInt(x) ? `${x}n` : x && x.constructor && x.constructor.name &&
   /^(Date|Time|LocalTime|DateTime|LocalDateTime|Duration)$/.test(x.constructor.name)
    ? `${x.constructor.name}(${x})` : x));

const T = neo4j.types;
const VALUES = {
  int: neo4j.int(42),
  bigint: neo4j.int('-9223372036854775808'),
  float: 3.25,
  string: 'héllo wörld ✓',
  bool: true,
  ints: [neo4j.int(1), neo4j.int(-2), neo4j.int(300000)],
  strings: ['a', 'b'],
  date: new T.Date(2024, 2, 29),
  time: new T.Time(12, 30, 15, 123000000, 3600),
  localtime: new T.LocalTime(23, 59, 59, 999999999),
  localdatetime: new T.LocalDateTime(1969, 12, 31, 23, 0, 0, 5),
  datetime: new T.DateTime(2024, 1, 2, 3, 4, 5, 6, -18000),
  datetimezone: new T.DateTime(2024, 7, 1, 12, 0, 0, 0, undefined, 'Europe/Stockholm'),
  duration: new T.Duration(14, 3, 3600, 7),
};
const RETURN_ONLY = {
  null: null,
  map: {a: neo4j.int(1), b: [true, 'x'], c: {d: 2.5}},
  bytes: new Int8Array([1, -2, 3]),
};

// lora_rows_streamed_total{api="bolt"} of node id (GET /metrics)
function boltRows(id) {
  return new Promise((resolve, reject) => {
    require('http').get({host: `${net}.${id}`, port: 4747, path: '/metrics'}, (r) => {
      let d = '';
      r.on('data', (c) => { d += c; });
      r.on('end', () => {
        const m = d.match(/lora_rows_streamed_total\{api="bolt"\} (\d+)/);
        resolve(m ? Number(m[1]) : 0);
      });
    }).on('error', reject);
  });
}

async function values() {
  const driver = neo4j.driver(`bolt://${addr(follower)}`, AUTH);
  try {
    const s = driver.session();
    // parameters to properties (a write on a follower: forwarded), back
    const w = await s.run('CREATE (n:V $props) RETURN n', {props: VALUES});
    const stored = w.records[0].get('n').properties;
    for (const [k, v] of Object.entries(VALUES))
      check(`property ${k} written and returned`, same(stored[k], v), `${show(stored[k])} vs ${show(v)}`);
    const bm = s.lastBookmarks();
    check('a write answers with a lora: bookmark', bm.length === 1 && /^lora:\d+$/.test(bm[0]), show(bm));
    // read on another session of the same node with the bookmark
    const s2 = driver.session({bookmarks: bm, defaultAccessMode: neo4j.session.READ});
    const r = await s2.run('MATCH (n:V) RETURN properties(n) AS p');
    check('read with the bookmark sees the write', r.records.length === 1);
    const p = r.records[0].get('p');
    for (const [k, v] of Object.entries(VALUES))
      check(`property ${k} read back`, same(p[k], v), `${show(p[k])} vs ${show(v)}`);
    await s2.close();
    const rr = await s.run('RETURN $v AS v', {v: RETURN_ONLY});
    check('null, map and bytes round trip', same(rr.records[0].get('v'), RETURN_ONLY),
          show(rr.records[0].get('v')));
    // values made by Cypher
    const c = await s.run(
      "RETURN date('2024-02-29') AS d, localtime('01:02:03.000000004') AS lt, " +
      "time('10:00+02:00') AS t, datetime('2024-01-02T03:04:05.123+01:00') AS dt, " +
      "datetime({year: 2024, month: 7, day: 1, hour: 12, timezone: 'Europe/Stockholm'}) AS dz, " +
      "localdatetime('2024-01-02T03:04:05') AS ldt, duration('P1Y2M3DT4H5M6.5S') AS du, " +
      "vector([1, 2.5, 3], 3, FLOAT32) AS vec");
    const got = c.records[0].toObject();
    const want = {
      d: '2024-02-29', lt: '01:02:03.000000004', t: '10:00:00+02:00',
      dt: '2024-01-02T03:04:05.123000000+01:00',
      dz: '2024-07-01T12:00:00+02:00[Europe/Stockholm]', ldt: '2024-01-02T03:04:05',
      du: 'P14M3DT14706.500000000S',
    };
    for (const [k, v] of Object.entries(want))
      check(`Cypher ${k} is ${v}`, got[k] && got[k].toString() === v, got[k] && got[k].toString());
    check('a vector is a list of floats', same(got.vec, [1, 2.5, 3]), show(got.vec));
    // nodes, relationships, paths
    const g = await s.run(
      "CREATE p = (a:A {x: 1})-[r:R {w: 2}]->(b:B) WITH p, a, r, b " +
      "MATCH q = (b)<-[:R]-(a) RETURN p, q, a, r, b");
    const rec = g.records[0];
    const a = rec.get('a'), rel = rec.get('r'), b = rec.get('b');
    check('node labels, properties, element id',
          same(a.labels, ['A']) && same(a.properties, {x: neo4j.int(1)}) &&
          typeof a.elementId === 'string' && a.elementId.length > 0, show(a));
    check('relationship type, ends, element ids',
          rel.type === 'R' && rel.start.equals(a.identity) && rel.end.equals(b.identity) &&
          rel.startNodeElementId === a.elementId && rel.endNodeElementId === b.elementId, show(rel));
    const path = rec.get('p');
    check('path start, end, segment', path.start.identity.equals(a.identity) &&
          path.end.identity.equals(b.identity) && path.segments.length === 1 &&
          path.segments[0].relationship.type === 'R', show(path));
    const q = rec.get('q');
    check('path walked against its relationship', q.start.identity.equals(b.identity) &&
          q.end.identity.equals(a.identity) &&
          q.segments[0].relationship.start.equals(a.identity), show(q));
    // errors
    try {
      await s.run('RETRN 1');
      fail('a syntax error fails');
    } catch (e) {
      check('a syntax error is Neo.ClientError.Statement.SyntaxError',
            e.code === 'Neo.ClientError.Statement.SyntaxError', e.code);
    }
    const after = await s.run('RETURN 1 AS one');
    check('the session works after a failure (RESET)', after.records[0].get('one').toNumber() === 1);
    // EXPLAIN and PROFILE: the plan in the summary; EXPLAIN of a write
    // changes nothing
    const ex = await s.run('EXPLAIN CREATE (:Explained)');
    check('EXPLAIN: no rows, a plan in the summary', ex.records.length === 0 &&
          ex.summary.plan && ex.summary.plan.operatorType === 'Create', show(ex.summary.plan));
    const pr = await s.run('PROFILE UNWIND range(1, 5) AS x RETURN x');
    check('PROFILE: the rows and a profile with row counts', pr.records.length === 5 &&
          pr.summary.profile && pr.summary.profile.rows === 5, show(pr.summary.profile));
    const nex = (await s.run('MATCH (n:Explained) RETURN count(n) AS c')).records[0].get('c').toNumber();
    check('EXPLAIN CREATE created nothing', nex === 0, nex);
    // tx_metadata.requestId is our request id: a retried write applies once
    const meta = {metadata: {requestId: `bolt-test-${process.pid}`}};
    await s.run('CREATE (:Dup)', {}, meta);
    await s.run('CREATE (:Dup)', {}, meta);
    const dups = (await s.run('MATCH (n:Dup) RETURN count(n) AS c')).records[0].get('c').toNumber();
    check('a write retried with the same requestId is applied once', dups === 1, dups);
    // streaming: many rows in batches of fetchSize
    const big = driver.session({fetchSize: 100});
    const many = await big.run('UNWIND range(1, 2500) AS i RETURN i');
    check('2,500 rows over PULL 100 batches', many.records.length === 2500 &&
          many.records[2499].get('i').toNumber() === 2500);
    await big.close();
    // DISCARD stops the statement: a 10M-row result of which the client
    // takes the first PULL (10 rows), then consumes (DISCARD -1)
    const before = await boltRows(follower);
    const ten = driver.session({fetchSize: 10});
    const res = ten.run('UNWIND range(1, 10000000) AS i RETURN i');
    let seen = 0;
    for await (const rec of res) {
      if (rec && ++seen === 5) break;
    }
    await res.summary().catch(() => {});
    await ten.close();
    const streamed = (await boltRows(follower)) - before;
    check('DISCARD after the first PULL stops a 10M-row statement', streamed < 1000,
          `${streamed} rows streamed`);
    // a read transaction
    const rt = await s.executeRead(async (tx) => {
      const x = await tx.run('MATCH (n:V) RETURN count(n) AS c');
      const y = await tx.run('MATCH (n:A) RETURN count(n) AS c');
      return [x.records[0].get('c').toNumber(), y.records[0].get('c').toNumber()];
    });
    check('a read transaction runs two statements', same(rt, [1, 1]), show(rt));
    await s.close();
  } finally {
    await driver.close();
  }
}

async function routing() {
  const driver = neo4j.driver(`neo4j://${addr(follower)}`, AUTH);
  try {
    const s = driver.session({defaultAccessMode: neo4j.session.WRITE});
    const w = await s.run('CREATE (n:Routed {k: 1}) RETURN n.k AS k');
    check(`a write through neo4j://${addr(follower)} ran on the leader ${addr(leader)}`,
          w.summary.server.address === addr(leader), w.summary.server.address);
    const bm = s.lastBookmarks();
    await s.close();
    const r = driver.session({defaultAccessMode: neo4j.session.READ, bookmarks: bm});
    const c = await r.run('MATCH (n:Routed) RETURN count(n) AS c');
    check('a routed read with the bookmark sees it', c.records[0].get('c').toNumber() === 1);
    await r.close();
    const res = await driver.executeQuery('MATCH (n:Routed) RETURN count(n) AS c', {},
      {routing: neo4j.routing.READ});
    check('executeQuery (READ) works', res.records[0].get('c').toNumber() === 1);
  } finally {
    await driver.close();
  }
}


async function tx() {
  const driver = neo4j.driver(`neo4j://${addr(follower)}`, AUTH);
  const count = async (label, bookmarks) => {
    const s = driver.session({defaultAccessMode: neo4j.session.READ, bookmarks});
    const r = await s.run(`MATCH (n:${label}) RETURN count(n) AS c`);
    await s.close();
    return r.records[0].get('c').toNumber();
  };
  try {
    const s = driver.session();
    const inside = await s.executeWrite(async (t) => {
      await t.run('CREATE (:T {k: 1})');
      const mine = (await t.run('MATCH (n:T) RETURN count(n) AS c')).records[0].get('c').toNumber();
      return [mine, await count('T')];
    });
    check('a transaction reads its own write; others do not see it before COMMIT',
          same(inside, [1, 0]), show(inside));
    check('after COMMIT everyone does', await count('T', s.lastBookmarks()) === 1);
    const t1 = s.beginTransaction();
    await t1.run('CREATE (:T {k: 2})');
    await t1.rollback();
    check('ROLLBACK leaves nothing', await count('T', s.lastBookmarks()) === 1);
    const t2 = s.beginTransaction();
    await t2.run('CREATE (:T {k: 3})');
    try {
      await t2.run('RETURN 1 / 0');
      fail('a failing statement fails');
    } catch (e) {
      check('a failing statement in a transaction: its code',
            e.code === 'Neo.ClientError.Statement.ArithmeticError', e.code);
    }
    await t2.close().catch(() => {});
    check('and the transaction left nothing', await count('T', s.lastBookmarks()) === 1);
    await s.executeWrite((t) => t.run('CREATE (:Counter {v: 0})'));
    const bm = s.lastBookmarks();
    await s.close();
    // 8 clients x 5 read-modify-write transactions: serializable, so no
    // increment is lost
    const clients = [...Array(8).keys()].map(async () => {
      const c = driver.session({bookmarks: bm});
      for (let i = 0; i < 5; i++)
        await c.executeWrite(async (t) => {
          const v = (await t.run('MATCH (c:Counter) RETURN c.v AS v')).records[0].get('v');
          await t.run('MATCH (c:Counter) SET c.v = $v', {v: v.add(1)});
        });
      const b = c.lastBookmarks();
      await c.close();
      return b;
    });
    const bms = (await Promise.all(clients)).flat();
    const r = driver.session({defaultAccessMode: neo4j.session.READ, bookmarks: bms});
    const v = (await r.run('MATCH (c:Counter) RETURN c.v AS v')).records[0].get('v').toNumber();
    await r.close();
    check('40 concurrent read-modify-write transactions: counter is 40', v === 40, v);
  } finally {
    await driver.close();
  }
}

// ---- the protocol by hand -------------------------------------------------
const tcp = require('net');
const HS = (versions) => Buffer.concat([Buffer.from([0x60, 0x60, 0xB0, 0x17]),
  ...versions.map((v) => Buffer.from(v))]);
const chunk = (body) => {
  const out = [];
  for (let o = 0; o < body.length; o += 0xFFFF) {
    const piece = body.subarray(o, Math.min(body.length, o + 0xFFFF));
    const h = Buffer.alloc(2);
    h.writeUInt16BE(piece.length);
    out.push(h, piece);
  }
  out.push(Buffer.from([0, 0]));
  return Buffer.concat(out);
};
const pstr = (s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([0xD0, b.length]), b]); };
const HELLO = chunk(Buffer.concat([Buffer.from([0xB1, 0x01, 0xA1]), pstr('user_agent'), pstr('raw/1')]));
const LOGON = chunk(Buffer.concat([Buffer.from([0xB1, 0x6A, 0xA3]), pstr('scheme'), pstr('basic'),
  pstr('principal'), pstr(USER), pstr('credentials'), pstr(PASSWORD)]));
const PULL = chunk(Buffer.concat([Buffer.from([0xB1, 0x3F, 0xA1]), pstr('n'), Buffer.from([0xFF])]));
const RESET = chunk(Buffer.from([0xB0, 0x0F]));

// Opens a connection; read(n) waits for n bytes, closed() for the end.
function rawConn(host) {
  return new Promise((resolve, reject) => {
    const sock = tcp.connect(7687, host);
    let buf = Buffer.alloc(0), ended = false, waiters = [];
    const poke = () => { waiters.forEach((w) => w()); };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); poke(); });
    sock.on('close', () => { ended = true; poke(); });
    sock.on('error', () => { ended = true; poke(); });
    const until = (cond, ms = 10000) => new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('timeout')), ms);
      const w = () => { if (cond()) { clearTimeout(t); waiters = waiters.filter((x) => x !== w); res(); } };
      waiters.push(w);
      w();
    });
    sock.on('connect', () => resolve({
      send: (b) => new Promise((res) => sock.write(b, () => res())),
      read: async (n) => { await until(() => buf.length >= n || ended); const r = buf.subarray(0, n); buf = buf.subarray(n); return r; },
      // the next message's tag (0x70 SUCCESS, 0x7E IGNORED, 0x7F FAILURE)
      msg: async () => {
        let body = Buffer.alloc(0);
        for (;;) {
          await until(() => buf.length >= 2 || ended);
          if (buf.length < 2) return null;
          const k = buf.readUInt16BE(0);
          await until(() => buf.length >= 2 + k || ended);
          if (buf.length < 2 + k) return null;
          body = Buffer.concat([body, buf.subarray(2, 2 + k)]);
          buf = buf.subarray(2 + k);
          if (k === 0 && body.length) return {tag: body[1], body};
        }
      },
      closed: () => until(() => ended),
      end: () => sock.destroy(),
    }));
    sock.on('error', reject);
  });
}

async function raw() {
  const host = `${net}.${follower}`;
  let c = await rawConn(host);
  await c.send(HS([[0, 0, 0, 3], [0, 2, 3, 4], [0, 0, 9, 5], [0, 0, 0, 0]]));
  const none = await c.read(4);
  check('no version in common: 00000000, closed', none.equals(Buffer.alloc(4)));
  await c.closed();
  c = await rawConn(host);
  await c.send(HS([[0, 8, 8, 5], [0, 0, 4, 4], [0, 0, 0, 0], [0, 0, 0, 0]]));
  const v = await c.read(4);
  check('5.8..5.0 proposed: 5.4 chosen', v.equals(Buffer.from([0, 0, 4, 5])), v.toString('hex'));
  await c.send(Buffer.concat([HELLO, LOGON, PULL, PULL, RESET]));
  const tags = [];
  for (let i = 0; i < 5; i++) tags.push((await c.msg()).tag);
  check('HELLO, LOGON ok; PULL with nothing open fails; then IGNORED; RESET ok',
        same(tags, [0x70, 0x70, 0x7F, 0x7E, 0x70]), tags.map((t) => t.toString(16)));
  await c.send(chunk(Buffer.from([0xB1, 0x10, 0xE0])));
  const bad = await c.msg();
  check('a malformed request: FAILURE', bad && bad.tag === 0x7F &&
        bad.body.includes(Buffer.from('Neo.ClientError.Request.InvalidFormat')));
  await c.closed();
  ok('and the connection is closed');
  c = await rawConn(host);
  await c.send(HS([[0, 0, 4, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]));
  await c.read(4);
  await c.send(HELLO);
  await c.msg();
  const big = Buffer.alloc(16 * 1024 * 1024 + 0x10000, 0xC0);
  c.send(chunk(big)).catch(() => {});
  await c.closed();
  ok('a request over 16 MiB closes the connection');
  c.end();
  // Bolt 4.4: credentials in HELLO, nodes without element ids
  c = await rawConn(host);
  await c.send(HS([[0, 0, 4, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]));
  const v44 = await c.read(4);
  check('4.4 alone proposed: 4.4 chosen', v44.equals(Buffer.from([0, 0, 4, 4])), v44.toString('hex'));
  const hello44 = chunk(Buffer.concat([Buffer.from([0xB1, 0x01, 0xA4]), pstr('user_agent'),
    pstr('raw/1'), pstr('scheme'), pstr('basic'), pstr('principal'), pstr(USER),
    pstr('credentials'), pstr(PASSWORD)]));
  const run = chunk(Buffer.concat([Buffer.from([0xB3, 0x10]), pstr('CREATE (n:Q) RETURN n'),
    Buffer.from([0xA0, 0xA0])]));
  await c.send(Buffer.concat([hello44, run, PULL]));
  const m = [];
  for (let i = 0; i < 4; i++) m.push(await c.msg());
  check('4.4: HELLO, RUN, a RECORD holding a 3-field Node, SUCCESS',
        m.every((x) => x) && m[0].tag === 0x70 && m[1].tag === 0x70 && m[2].tag === 0x71 &&
        m[2].body[3] === 0xB3 && m[2].body[4] === 0x4E && m[3].tag === 0x70,
        m.map((x) => x && x.body.toString('hex')).join(' '));
  c.end();
}

async function limit() {
  const host = `${net}.${follower}`, max = Number(leaderPid);
  const conns = [];
  for (let i = 0; i < max; i++) {
    const c = await rawConn(host);
    await c.send(HS([[0, 0, 4, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]));
    const v = await c.read(4);
    if (v.length !== 4) fail(`connection ${i + 1} of ${max} answered`);
    conns.push(c);
  }
  ok(`${max} connections answered`);
  const extra = await rawConn(host);
  await extra.send(HS([[0, 0, 4, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]));
  const v = await extra.read(4);
  check(`connection ${max + 1} is closed unanswered`, v.length === 0, v.toString('hex'));
  conns[0].end();
  await conns[0].closed();
  // the server frees the slot once its thread ends: retry for a while
  let got = 0;
  for (let i = 0; i < 50 && got !== 4; i++) {
    const again = await rawConn(host);
    await again.send(HS([[0, 0, 4, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]));
    got = (await again.read(4)).length;
    again.end();
    if (got !== 4) await new Promise((res) => setTimeout(res, 100));
  }
  check('after one leaves, a new connection is answered', got === 4);
  conns.forEach((c) => c.end());
}

// The leader (process leaderPid) is killed in the middle of the first
// attempt of a write transaction, after its first statement and before
// COMMIT: the driver retries the whole transaction on the new leader,
// and the write is applied once.
function dead(pid) {
  try {
    const st = require('fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / [ZX] /.test(st.slice(st.lastIndexOf(')')));
  } catch (e) {
    return true;
  }
}

async function failover() {
  const driver = neo4j.driver(`neo4j://${addr(follower)}`, AUTH,
    {maxTransactionRetryTime: 30000});
  try {
    const s = driver.session();
    let attempts = 0;
    const k = await s.executeWrite(async (t) => {
      attempts++;
      const r = await t.run('CREATE (n:After {k: 2}) RETURN n.k AS k');
      if (attempts === 1) {
        process.kill(Number(leaderPid), 'SIGKILL');
        while (!dead(leaderPid)) await new Promise((res) => setTimeout(res, 20));
        console.log(`killed the leader (pid ${leaderPid}) inside the transaction`);
      }
      return r.records[0].get('k').toNumber();
    });
    check(`the transaction was retried on the new leader (attempts ${attempts})`,
          k === 2 && attempts >= 2, attempts);
    const c = await s.executeRead(async (tx) =>
      (await tx.run('MATCH (n:After) RETURN count(n) AS c')).records[0].get('c').toNumber());
    check('the retried write was applied once', c === 1, c);
    const n = await s.executeRead(async (tx) =>
      (await tx.run('MATCH (n:Routed) RETURN count(n) AS c')).records[0].get('c').toNumber());
    check('what was acknowledged before the kill is there', n === 1, n);
    await s.close();
  } finally {
    await driver.close();
  }
}

// ---- write transactions through a follower over bolt:// -----------------

// count(n:label) over bolt:// to node id, with bookmarks
async function countOn(id, label, bookmarks) {
  const d = neo4j.driver(`bolt://${addr(id)}`, AUTH);
  try {
    const s = d.session({defaultAccessMode: neo4j.session.READ, bookmarks});
    const r = await s.run(`MATCH (n:${label}) RETURN count(n) AS c`);
    await s.close();
    return r.records[0].get('c').toNumber();
  } finally {
    await d.close();
  }
}

async function followerTx() {
  const driver = neo4j.driver(`bolt://${addr(follower)}`, AUTH);
  try {
    const s = driver.session();
    const inside = await s.executeWrite(async (t) => {
      await t.run('CREATE (:FT {k: 1})');
      await t.run('MATCH (n:FT {k: 1}) SET n.seen = true');
      const mine = (await t.run('MATCH (n:FT {seen: true}) RETURN count(n) AS c'))
        .records[0].get('c').toNumber();
      return [mine, await countOn(follower, 'FT')];
    });
    check('bolt:// follower: a write transaction reads its own writes; ' +
          'others do not see them before COMMIT', same(inside, [1, 0]), show(inside));
    const bm = s.lastBookmarks();
    check('its COMMIT gives a bookmark', bm.length === 1 && /^lora:\d+$/.test(bm[0]), show(bm));
    for (const id of [1, 2, 3])
      check(`after COMMIT node ${id} has it`, await countOn(id, 'FT', bm) === 1);
    const t1 = s.beginTransaction();
    await t1.run('CREATE (:FT {k: 2})');
    check('inside: 2', (await t1.run('MATCH (n:FT) RETURN count(n) AS c'))
      .records[0].get('c').toNumber() === 2);
    await t1.rollback();
    check('bolt:// follower: ROLLBACK leaves nothing', await countOn(follower, 'FT', bm) === 1 &&
          await countOn(leader, 'FT', bm) === 1);
    try {
      await s.executeWrite(async (t) => {
        await t.run('CREATE (:FT {k: 3})');
        throw new Error('the application gives up');
      });
      fail('a thrown transaction function fails');
    } catch (e) {
      check('a thrown transaction function is not retried', e.message === 'the application gives up', e.message);
    }
    check('and leaves nothing', await countOn(follower, 'FT', s.lastBookmarks()) === 1);
    await s.executeWrite((t) => t.run('CREATE (:FCounter {v: 0})'));
    const bm0 = s.lastBookmarks();
    await s.close();
    const clients = [...Array(8).keys()].map(async () => {
      const c = driver.session({bookmarks: bm0});
      for (let i = 0; i < 5; i++)
        await c.executeWrite(async (t) => {
          const v = (await t.run('MATCH (c:FCounter) RETURN c.v AS v')).records[0].get('v');
          await t.run('MATCH (c:FCounter) SET c.v = $v', {v: v.add(1)});
        });
      const b = c.lastBookmarks();
      await c.close();
      return b;
    });
    const bms = (await Promise.all(clients)).flat();
    const r = driver.session({defaultAccessMode: neo4j.session.READ, bookmarks: bms});
    const v = (await r.run('MATCH (c:FCounter) RETURN c.v AS v')).records[0].get('v').toNumber();
    await r.close();
    check('40 read-modify-write transactions through the follower: counter is 40', v === 40, v);
  } finally {
    await driver.close();
  }
}

// POST path with body to node id's HTTP API, as the admin: the status
function postAdmin(id, path, body) {
  return new Promise((resolve, reject) => {
    const req = require('http').request({host: `${net}.${id}`, port: 4747, path, method: 'POST',
      headers: {Authorization: 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}},
    (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

// the leader node id knows of (0: none)
function leaderOf(id) {
  return new Promise((resolve) => {
    require('http').get({host: `${net}.${id}`, port: 4747, path: '/cluster/status',
      headers: {Authorization: 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}},
    (r) => {
      let d = '';
      r.on('data', (c) => { d += c; });
      r.on('end', () => { const m = d.match(/"leader":(\d+)/); resolve(m ? Number(m[1]) : 0); });
    }).on('error', () => resolve(0));
  });
}

// bolt:// to the follower; leadership moves (a transfer, the old leader
// stays up) to the third node inside a write transaction: the next
// statement is a retryable error, executeWrite's retry commits once on
// the new leader
async function followerMove() {
  const third = [1, 2, 3].find((id) => String(id) !== String(leader) && String(id) !== String(follower));
  const driver = neo4j.driver(`bolt://${addr(follower)}`, AUTH, {maxTransactionRetryTime: 30000});
  try {
    const s = driver.session();
    let attempts = 0, firstError = null;
    const k = await s.executeWrite(async (t) => {
      attempts++;
      const r = await t.run('CREATE (n:FM {k: 5}) RETURN n.k AS k');
      if (attempts === 1) {
        const st = await postAdmin(leader, '/cluster/transfer', JSON.stringify({to: third}));
        const until = Date.now() + 20000;
        while (Date.now() < until && (await leaderOf(follower)) !== third)
          await new Promise((res) => setTimeout(res, 50));
        console.log(`moved leadership ${leader} -> ${third} inside the transaction (HTTP ${st})`);
        try {
          await t.run('MATCH (n:FM) RETURN count(n) AS c');
        } catch (e) {
          firstError = e;
          throw e;
        }
      }
      return r.records[0].get('k').toNumber();
    }).catch((e) => `${e.code} ${e.message}`);
    // the old leader rolled the transaction back when it stepped down: its
    // next statement or its COMMIT fails, retryably (else executeWrite
    // would not have run it again)
    check('leadership moved: a failed statement in it is a retryable transient error',
          firstError === null || (neo4j.isRetriableError(firstError) &&
          /^Neo\.TransientError\./.test(firstError.code)),
          firstError && `${firstError.code} ${firstError.message}`);
    check(`the first attempt failed retryably, the retry committed on the new leader (attempts ${attempts})`,
          k === 5 && attempts >= 2, k);
    const bm = s.lastBookmarks();
    await s.close();
    for (const id of [1, 2, 3])
      check(`applied once, on node ${id}`, await countOn(id, 'FM', bm) === 1);
  } finally {
    await driver.close();
  }
}

// pid is dead and its sockets are closed: the group leader is a zombie
// (or gone) and no other thread is left (the last thread to exit closes
// the files; the group leader turns zombie before that)
function closed(pid) {
  try {
    const st = require('fs').readFileSync(`/proc/${pid}/status`, 'utf8');
    return /^State:\s+[ZX]/m.test(st) && /^Threads:\s+1$/m.test(st);
  } catch (e) {
    return true;
  }
}

async function followerKill() {
  const driver = neo4j.driver(`bolt://${addr(follower)}`, AUTH,
    {maxTransactionRetryTime: 30000});
  try {
    const s = driver.session();
    let attempts = 0, firstError = null;
    const errors = [];
    const k = await s.executeWrite(async (t) => {
      attempts++;
      const r = await t.run('CREATE (n:FK {k: 7}) RETURN n.k AS k');
      if (attempts === 1) {
        process.kill(Number(leaderPid), 'SIGKILL');
        while (!closed(leaderPid)) await new Promise((res) => setTimeout(res, 20));
        console.log(`killed the leader (pid ${leaderPid}) inside the transaction`);
        try {
          await t.run('MATCH (n:FK) RETURN count(n) AS c');
        } catch (e) {
          firstError = e;
          throw e; // the driver decides whether to retry
        }
      }
      return r.records[0].get('k').toNumber();
    }).catch((e) => { errors.push(`${e.code} ${e.message}`); return -1; });
    check('the next statement after the kill: a retryable transient error',
          firstError && firstError.code === 'Neo.TransientError.General.DatabaseUnavailable' &&
          neo4j.isRetriableError(firstError),
          firstError && `${firstError.code} ${firstError.message}`);
    check(`bolt:// follower: the transaction was retried after the leader's kill ` +
          `and committed (attempts ${attempts})`, k === 7 && attempts >= 2,
          `${attempts} ${errors.join('; ')}`);
    const bm = s.lastBookmarks();
    await s.close();
    const others = [1, 2, 3].filter((id) => String(id) !== String(leader));
    for (const id of others)
      check(`the retried transaction is applied once, on node ${id}`,
            await countOn(id, 'FK', bm) === 1);
  } finally {
    await driver.close();
  }
}

// Authentication: a wrong password and the none scheme are refused with
// Neo4j's code; the right one works.
async function auth() {
  for (const [what, a] of [['a wrong password', neo4j.auth.basic(USER, PASSWORD + 'x')],
                           ['no credentials', neo4j.auth.none()]]) {
    const d = neo4j.driver(`bolt://${addr(follower)}`, a);
    try {
      await d.session().run('RETURN 1');
      fail(`${what} was accepted`);
    } catch (e) {
      check(`${what} is refused as Unauthorized`,
            e.code === 'Neo.ClientError.Security.Unauthorized', e.code);
    } finally {
      await d.close();
    }
  }
  const d = neo4j.driver(`bolt://${addr(follower)}`, AUTH);
  try {
    const r = await d.session().run('RETURN 1 AS one');
    check('the right password works', r.records[0].get('one').toNumber() === 1);
  } finally {
    await d.close();
  }
  // a reader reads, but neither writes nor holds the writer with BEGIN
  const rd = neo4j.driver(`bolt://${addr(leader)}`, neo4j.auth.basic('rita', 'rita-pw-1'));
  try {
    const s = rd.session();
    const r = await s.run('RETURN 2 AS two');
    check('a reader reads', r.records[0].get('two').toNumber() === 2);
    for (const [what, run] of [
      ['a reader\'s auto-commit write', () => s.run('CREATE (:ByReader)')],
      ['a reader\'s write transaction', () => s.executeWrite((tx) => tx.run('RETURN 1'))]]) {
      try {
        await run();
        fail(`${what} was allowed`);
      } catch (e) {
        check(`${what} is Forbidden`, e.code === 'Neo.ClientError.Security.Forbidden', e.code);
      }
    }
    await s.close();
  } finally {
    await rd.close();
  }
}

// PHASE tls: the cluster runs with bolt_tls = required (tests/integration/
// tls.sh): bolt:// and neo4j:// with encryption on and the cluster's CA
// (LORA_CA) as trustedCertificates read, write, route and run a write
// transaction (over bolt:// to the follower, relayed to the leader over
// TLS); another CA (OTHER_CA) and plaintext are refused.
async function tlsPhase() {
  const custom = (ca) => ({encrypted: 'ENCRYPTION_ON',
    trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES', trustedCertificates: [ca],
    connectionTimeout: 5000, maxTransactionRetryTime: 2000});
  for (const scheme of ['bolt', 'neo4j']) {
    const d = neo4j.driver(`${scheme}://${addr(follower)}`, AUTH, custom(process.env.LORA_CA));
    try {
      const s = d.session({defaultAccessMode: neo4j.session.WRITE});
      const r = await s.run('CREATE (t:TlsDriver {s: $s}) RETURN t.s AS s', {s: scheme});
      check(`${scheme}:// with the cluster CA writes`, r.records[0].get('s') === scheme);
      // bolt:// to a follower: the write transaction is relayed to the
      // leader over TLS (node/bolt_relay.c)
      const n = await s.executeWrite(async (t) => {
        await t.run('CREATE (:TlsTx {s: $s})', {s: scheme});
        return (await t.run('MATCH (t:TlsTx {s: $s}) RETURN count(t) AS c', {s: scheme}))
          .records[0].get('c').toNumber();
      });
      check(`${scheme}:// with the cluster CA: a write transaction reads its write`, n === 1, n);
      await s.close();
    } finally {
      await d.close();
    }
  }
  for (const [what, cfg] of [['another CA', custom(process.env.OTHER_CA)],
    ['plaintext', {encrypted: 'ENCRYPTION_OFF', connectionTimeout: 5000,
      maxTransactionRetryTime: 2000}]]) {
    const d = neo4j.driver(`bolt://${addr(follower)}`, AUTH, cfg);
    try {
      const s = d.session();
      await s.run('RETURN 1');
      fail(`${what} was accepted`);
    } catch (e) {
      ok(`${what} is refused (${e.code || e.message.slice(0, 60)})`);
    } finally {
      await d.close();
    }
  }
}

(async () => {
  try {
    if (phase === 'auth') await auth();
    else if (phase === 'tls') await tlsPhase();
    else if (phase === 'values') await values();
    else if (phase === 'routing') await routing();
    else if (phase === 'failover') await failover();
    else if (phase === 'tx') await tx();
    else if (phase === 'followertx') await followerTx();
    else if (phase === 'followerkill') await followerKill();
    else if (phase === 'followermove') await followerMove();
    else if (phase === 'raw') await raw();
    else if (phase === 'limit') await limit();
    else fail(`unknown phase ${phase}`);
  } catch (e) {
    fail(`phase ${phase} threw`, `${e.code || ''} ${e.message}`);
  }
  process.exit(fails ? 1 : 0);
})();
