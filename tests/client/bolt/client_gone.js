// client_gone.js - clients that leave while their read runs inside one
// operator (count(*) over 2,000,000,000 rows: no row is out before it
// ends), run by tests/integration/statement_time.sh, which checks the
// node's lora_statements_client_gone_total afterwards:
// - Bolt: an auto-commit RUN without a timeout through the official Neo4j
//   JavaScript driver, whose driver is closed after 1 s (its socket
//   closes);
// - HTTP (only with SCHEME http): POST /query on a socket of its own,
//   reset after 1 s (an RST: a FIN alone may be a client that half-closed
//   after its request and still reads the answer);
// - HTTP again, a socket closed after 1 s with a FIN (close(), not a
//   reset): the node cannot tell it from a half-close until it sends an
//   interim "100 Continue", which a closed socket answers with a reset;
// - HTTP, a client that half-closes right after its request (a count over
//   3,000,000 rows; the node probes once the request is 200 ms old): it
//   still gets the whole answer, after a "100 Continue" when the count
//   ran that long;
// - Bolt again, the same read in an explicit read transaction, the driver
//   closed after 500 ms;
// - a Bolt write (three :GoneW nodes after a scan of 3,000,000 rows) whose
//   driver is closed after 300 ms: writes are not stopped, the shell
//   checks that its nodes are there.
// Usage: node client_gone.js NET NODE SCHEME AUTHORIZATION
// Prints what it did; exit 1 when it could not do it.
'use strict';
const net = require('net');
const neo4j = require('neo4j-driver');

const [ipNet, node, scheme, authz] = process.argv.slice(2);
const LONG = 'UNWIND range(1, 2000000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c';
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

async function bolt() {
  const driver = neo4j.driver(`bolt://${ipNet}.${node}:7687`,
    neo4j.auth.basic(process.env.LORA_USER || 'admin', process.env.LORA_PASSWORD || ''),
    { connectionTimeout: 5000 });
  const session = driver.session();
  const run = session.run(LONG).then(() => 'ended', (e) => `failed: ${e.code}`);
  await sleep(1000);
  await driver.close();
  console.log(`bolt: driver closed after 1 s (the run ${await Promise.race([run, sleep(100).then(() => 'was still running')])})`);
}

function request(query) {
  const body = JSON.stringify({ query, format: 'rowArrays' });
  return `POST /query HTTP/1.1\r\nHost: ${ipNet}.${node}\r\nAuthorization: ${authz}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// how: 'reset' (an RST) or 'close' (a FIN)
function http(how) {
  return new Promise((resolve, reject) => {
    const s = net.connect(4747, `${ipNet}.${node}`, () => {
      s.write(request(LONG));
      setTimeout(() => {
        if (how === 'reset')
          s.resetAndDestroy();
        else
          s.destroy();
        console.log(`http: connection ${how === 'reset' ? 'reset' : 'closed (FIN)'} after 1 s`);
        resolve();
      }, 1000);
    });
    s.on('data', (d) => {
      if (!/^HTTP\/1\.1 100 Continue\r\n\r\n$/.test(d.toString()))
        console.log(`http: unexpected answer: ${d.toString().slice(0, 200)}`);
    });
    s.on('error', (e) => { if (!s.destroyed) reject(e); });
  });
}

function httpHalfClose() {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = net.connect({ port: 4747, host: `${ipNet}.${node}`, allowHalfOpen: true }, () => {
      s.end(request('UNWIND range(1, 3000000) AS i WITH i WHERE i < 0 RETURN count(*) AS c'));
    });
    s.on('data', (d) => { got += d.toString(); });
    s.on('end', () => {
      const ok = /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /.test(got) && got.includes('"rows":[[0]]');
      const plain = /^HTTP\/1\.1 200 /.test(got) && got.includes('"rows":[[0]]');
      console.log(ok ? 'http half-close: answered 200 with the count, after a 100 Continue'
        : plain ? 'http half-close: answered 200 with the count, no 100 Continue (ended before a check)'
          : `http half-close: FAIL: ${got.slice(0, 300)}`);
      resolve();
    });
    s.on('error', reject);
    s.setTimeout(30000, () => { console.log('http half-close: FAIL: no answer in 30 s'); s.destroy(); resolve(); });
  });
}

async function boltTx() {
  const driver = neo4j.driver(`bolt://${ipNet}.${node}:7687`,
    neo4j.auth.basic(process.env.LORA_USER || 'admin', process.env.LORA_PASSWORD || ''),
    { connectionTimeout: 5000 });
  const session = driver.session({ defaultAccessMode: neo4j.session.READ });
  const tx = await session.beginTransaction();
  tx.run(LONG).then(() => {}, () => {});
  await sleep(500);
  await driver.close();
  console.log('bolt: driver closed 500 ms into a read transaction');
}

async function boltWrite() {
  const driver = neo4j.driver(`bolt://${ipNet}.${node}:7687`,
    neo4j.auth.basic(process.env.LORA_USER || 'admin', process.env.LORA_PASSWORD || ''),
    { connectionTimeout: 5000 });
  const session = driver.session();
  session.run('UNWIND range(1, 3000000) AS i WITH i WHERE i % 1000000 = 0 CREATE (:GoneW {i: i})')
    .then(() => {}, () => {});
  await sleep(300);
  await driver.close();
  console.log('bolt: driver closed 300 ms into a write');
}

async function main() {
  await bolt();
  if (scheme === 'http') {
    await http('reset');
    await http('close');
    await httpHalfClose();
  }
  await boltTx();
  await boltWrite();
  process.exit(0);
}

main().catch((e) => { console.log(`FAIL: ${e.stack}`); process.exit(1); });
