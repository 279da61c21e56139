// bank.js - one Bolt client of the bank test (tests/integration/bank.sh):
// moves money between the ten accounts in managed write transactions
// (session.executeWrite: the driver retries them, across a leader kill,
// through neo4j:// routing over the three nodes) until END (epoch s).
// A transaction first looks for its transfer id: a retry of one that did
// commit (its answer lost) changes nothing, so each applies once.
// Usage: node bank.js NET CLIENT END SEED ACKED_FILE
// Writes each acknowledged transfer id to ACKED_FILE; prints "done N".
'use strict';
const fs = require('fs');
const neo4j = require('neo4j-driver');

const [net, client, end, seed, ackedFile] = process.argv.slice(2);
const AUTH = neo4j.auth.basic(process.env.LORA_USER || 'admin',
  process.env.LORA_PASSWORD || '');
let state = (Number(seed) * 16 + Number(client) + 8) >>> 0 || 1;
const rnd = (n) => { // xorshift32: the run repeats from LORA_SEED
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state % n;
};

async function main() {
  const driver = neo4j.driver(`neo4j://${net}.1:7687`, AUTH, {
    resolver: () => [1, 2, 3].map((i) => `${net}.${i}:7687`),
    maxTransactionRetryTime: 30000,
    connectionTimeout: 3000,
  });
  let k = 0, acked = 0;
  while (Date.now() / 1000 < Number(end)) {
    k++;
    const a = rnd(10);
    let b = rnd(9);
    if (b >= a) b++;
    const m = rnd(50) + 1, tid = `b${client}-${k}`;
    const session = driver.session({ defaultAccessMode: neo4j.session.WRITE });
    try {
      const moved = await session.executeWrite(async (tx) => {
        const seen = await tx.run('MATCH (t:Transfer {tid: $tid}) RETURN count(t) AS c', { tid });
        if (seen.records[0].get('c').toNumber() > 0) return true;
        const r = await tx.run(
          'MATCH (a:Acct {id: $a}), (b:Acct {id: $b}) RETURN a.bal AS x, b.bal AS y',
          { a: neo4j.int(a), b: neo4j.int(b) });
        const x = r.records[0].get('x').toNumber(), y = r.records[0].get('y').toNumber();
        if (x < m) return false;
        await tx.run(
          'MATCH (a:Acct {id: $a}), (b:Acct {id: $b}) SET a.bal = $x, b.bal = $y ' +
          'CREATE (:Transfer {tid: $tid, src: $a, dst: $b, amt: $m})',
          { a: neo4j.int(a), b: neo4j.int(b), x: neo4j.int(x - m), y: neo4j.int(y + m),
            tid, m: neo4j.int(m) });
        return true;
      });
      if (moved) {
        fs.appendFileSync(ackedFile, tid + '\n');
        acked++;
      }
    } catch (e) {
      console.log(`transfer ${tid} failed: ${e.code || ''} ${e.message}`);
    } finally {
      await session.close();
    }
  }
  await driver.close();
  console.log(`done ${acked}`);
}

main().catch((e) => { console.log(`error: ${e.stack}`); process.exit(1); });
