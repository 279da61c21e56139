// bolt_test.js - the official Neo4j JavaScript driver against a LoraDB-C
// cluster (run by tests/client/bolt_driver.sh). Usage:
//   node bolt_test.js PHASE NET LEADER FOLLOWER
// PHASE values:   every value type written and read back over bolt:// (a
//                 follower: writes are forwarded), error codes, read
//                 transactions, bookmarks across sessions
// PHASE routing:  neo4j:// through a follower: writes reach the leader
// PHASE failover: after the leader was killed, the driver's retries
//                 (managed transactions) reach the new leader
// Prints "ok: ..." per check, "FAIL: ..." per failure; exit 1 on any.
'use strict';
const neo4j = require('neo4j-driver');

const [phase, net, leader, follower] = process.argv.slice(2);
const addr = (id) => `${net}.${id}:7687`;
let fails = 0;
const ok = (what) => console.log(`ok: ${what}`);
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

async function values() {
  const driver = neo4j.driver(`bolt://${addr(follower)}`, neo4j.auth.basic('neo4j', 'any'));
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
    // streaming: many rows in batches of fetchSize
    const big = driver.session({fetchSize: 100});
    const many = await big.run('UNWIND range(1, 2500) AS i RETURN i');
    check('2,500 rows over PULL 100 batches', many.records.length === 2500 &&
          many.records[2499].get('i').toNumber() === 2500);
    await big.close();
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
  const driver = neo4j.driver(`neo4j://${addr(follower)}`, neo4j.auth.none());
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

async function failover() {
  // `leader` is dead now; `follower` survives. The routing table the
  // driver gets names the new leader once one is elected; until then
  // writes fail with retryable errors, which executeWrite retries.
  const driver = neo4j.driver(`neo4j://${addr(follower)}`, neo4j.auth.none(),
    {maxTransactionRetryTime: 30000});
  try {
    const s = driver.session();
    const n = await s.executeRead(async (tx) =>
      (await tx.run('MATCH (n:Routed) RETURN count(n) AS c')).records[0].get('c').toNumber());
    check('a read after the leader died (driver retries)', n === 1, n);
    let attempts = 0;
    const k = await s.executeWrite(async (tx) => {
      attempts++;
      return (await tx.run('CREATE (n:After {k: 2}) RETURN n.k AS k')).records[0].get('k').toNumber();
    });
    check(`a write transaction after the leader died succeeds (attempts ${attempts})`, k === 2);
    const c = await s.executeRead(async (tx) =>
      (await tx.run('MATCH (n:After) RETURN count(n) AS c')).records[0].get('c').toNumber());
    check('the retried write was applied once', c === 1, c);
    await s.close();
  } finally {
    await driver.close();
  }
}

(async () => {
  try {
    if (phase === 'values') await values();
    else if (phase === 'routing') await routing();
    else if (phase === 'failover') await failover();
    else fail(`unknown phase ${phase}`);
  } catch (e) {
    fail(`phase ${phase} threw`, `${e.code || ''} ${e.message}`);
  }
  process.exit(fails ? 1 : 0);
})();
