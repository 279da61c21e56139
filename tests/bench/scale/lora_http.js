// lora_http.js - loads the generated graph into a running LoraDB-C cluster
// through its HTTP API and times the query set there.
//
// usage: node lora_http.js --dir DATA --leader HOST:PORT --hosts H1,H2,H3
//          --pids P1,P2,P3 --out RESULT.json [--time-limit S]
//          [--people-batch N] [--edge-batch N] [--skip-load 1]
//          [--query-timeout S] [--mem-cap-mib N] [--import-ms MS]
// Load: CREATE INDEX on :Person(id) and a cosine vector index on emb, then
// batches of `UNWIND $rows AS r CREATE (:Person {...})`, then batches of
// `UNWIND $pairs AS pr MATCH (a:Person {id: pr[0]}), (b:Person {id: pr[1]})
// CREATE (a)-[:KNOWS]->(b)`, all to the leader, each with a requestId (a
// 503 is retried with the same id). The load stops starting batches once
// --time-limit seconds have passed; the result says how much was loaded.
// With --skip-load (the graph was imported) it counts what is there.
// A query form that runs past --query-timeout is given up (the client
// reconnects; the server may still be running it) and the next form is
// tried; a node growing past --mem-cap-mib ends the run (SIGKILL of this process) so that
// the shell stops the cluster.
"use strict";
const fs = require("fs");
const C = require("./common");
const { Conn } = require("./httpc");

const PERSON_CREATE = "UNWIND $rows AS r CREATE (:Person {id: r.id, name: r.name, " +
	"age: r.age, city: r.city, emb: vector(r.emb, 128, FLOAT32)})";
const KNOWS_CREATE = "UNWIND $pairs AS pr MATCH (a:Person {id: pr[0]}), " +
	"(b:Person {id: pr[1]}) CREATE (a)-[:KNOWS]->(b)";
const VEC_INDEX = "CREATE VECTOR INDEX person_emb FOR (p:Person) ON (p.emb) " +
	"OPTIONS {indexConfig: {`vector.dimensions`: 128, `vector.similarity_function`: 'cosine'}}";

// The forms of each query, tried in order (see common.measure).
const FORMS = {
	point: [{ name: "MATCH (p:Person {id: $id}) RETURN p.name",
		q: "MATCH (p:Person {id: $id}) RETURN p.name", p: (id) => ({ id }) }],
	twoHop: [{ name: "MATCH (p:Person {id:$id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)",
		q: "MATCH (p:Person {id:$id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)",
		p: (id) => ({ id }) }],
	city: [{ name: "MATCH (p:Person) RETURN p.city, count(*)",
		q: "MATCH (p:Person) RETURN p.city, count(*)", p: () => ({}) }],
	shortest: [
		{ name: "MATCH (a {id:$a}), (b {id:$b}) MATCH p = shortestPath((a)-[:KNOWS*..6]-(b))",
			q: "MATCH (a:Person {id: $a}), (b:Person {id: $b}) " +
				"MATCH p = shortestPath((a)-[:KNOWS*..6]-(b)) RETURN length(p)",
			p: ([a, b]) => ({ a, b }) },
		{ name: "MATCH p = shortestPath((a:Person {id:$a})-[:KNOWS*..6]-(b:Person {id:$b}))",
			q: "MATCH p = shortestPath((a:Person {id: $a})-[:KNOWS*..6]-(b:Person {id: $b})) " +
				"RETURN length(p)",
			p: ([a, b]) => ({ a, b }) }],
	// the goal is the exact top 10: once the background build has made the
	// index ONLINE, the procedure answers from the graph (approximate)
	// unless asked for the exact mode
	cosine: [{ name: "CALL db.index.vector.queryNodes('person_emb', 10, $q, {exact: true}) YIELD node, score",
		q: "CALL db.index.vector.queryNodes('person_emb', 10, $q, {exact: true}) YIELD node, score " +
			"RETURN node.id, score", p: (q) => ({ q }) }],
	cosineScan: [{ name: "ORDER BY vector.similarity.cosine(p.emb, $q) DESC LIMIT 10",
		q: "MATCH (p:Person) RETURN p.id AS id, vector.similarity.cosine(p.emb, $q) AS score " +
			"ORDER BY score DESC LIMIT 10", p: (q) => ({ q }) }],
};

async function query(conn, q, params, extra = {}) {
	const body = JSON.stringify({ query: q, params, format: "rowArrays", ...extra });
	for (let attempt = 0; ; attempt++) {
		const r = await conn.request("POST", "/query", body);
		if (r.status === 200) {
			const j = JSON.parse(r.body);
			return { rows: j.rows, ms: r.ms };
		}
		// 503: not executed or unknown outcome; the requestId makes the
		// retry safe for writes. Reads are never answered 503 locally.
		if (r.status !== 503 || attempt >= 50)
			throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
		await new Promise((res) => setTimeout(res, 100));
	}
}

async function load(conn, o, meta, log) {
	const t0 = C.nowMs(), deadline = t0 + o.timeLimit * 1000;
	const res = { people: 0, edges: 0, peopleS: 0, edgesS: 0, limitHit: false,
		peopleTotal: meta.people, edgesTotal: meta.edges,
		timeLimitS: o.timeLimit };
	await query(conn, "CREATE INDEX person_id FOR (p:Person) ON (p.id)", {});
	await query(conn, VEC_INDEX, {});
	let batch = [], nb = 0;
	const sendPeople = async () => {
		await query(conn, PERSON_CREATE, { rows: batch }, { requestId: `scale-p-${nb++}` });
		res.people += batch.length;
		batch = [];
	};
	// eachPerson is synchronous: collect a batch, send it, go on.
	const people = [];
	C.eachPerson(o.dir, (p) => { people.push(p); });
	for (const p of people) {
		batch.push(p);
		if (batch.length >= o.peopleBatch) {
			if (C.nowMs() > deadline) { res.limitHit = true; break; }
			await sendPeople();
		}
	}
	if (!res.limitHit && batch.length) await sendPeople();
	people.length = 0;
	res.peopleS = (C.nowMs() - t0) / 1000;
	log(`people: ${res.people} in ${res.peopleS.toFixed(1)} s`);
	if (res.limitHit || res.people < meta.people) return res;
	const t1 = C.nowMs();
	const pairs = [];
	C.eachEdge(o.dir, meta.edges, (a, b) => { pairs.push([a, b]); });
	let last = t1;
	for (let i = 0; i < pairs.length; i += o.edgeBatch) {
		if (C.nowMs() > deadline) { res.limitHit = true; break; }
		const chunk = pairs.slice(i, i + o.edgeBatch);
		await query(conn, KNOWS_CREATE, { pairs: chunk }, { requestId: `scale-e-${i}` });
		res.edges += chunk.length;
		if (C.nowMs() - last > 10000) {
			last = C.nowMs();
			log(`edges: ${res.edges} after ${((last - t1) / 1000).toFixed(0)} s`);
		}
	}
	res.edgesS = (C.nowMs() - t1) / 1000;
	log(`edges: ${res.edges} in ${res.edgesS.toFixed(1)} s${res.limitHit ? " (time limit)" : ""}`);
	return res;
}

// Waits until every node reports the same applied index (followers have
// applied the whole load), so their RSS is measured on the same state.
async function converge(hosts) {
	const conns = hosts.map((h) => new Conn(h));
	await Promise.all(conns.map((c) => c.ready));
	const deadline = C.nowMs() + 300000;
	let prev = null;
	while (C.nowMs() < deadline) {
		const idx = [];
		for (const c of conns) {
			const r = await c.request("GET", "/admin/digest");
			idx.push(JSON.parse(r.body).appliedIndex);
		}
		if (idx.every((x) => x === idx[0]) && prev === idx[0]) break;
		prev = idx.every((x) => x === idx[0]) ? idx[0] : null;
		await new Promise((res) => setTimeout(res, 200));
	}
	conns.forEach((c) => c.close());
}

const rssOf = (pids) => pids.map((p) => C.rss(p));

// Where each node's memory is (GET /metrics: lora_memory_bytes by part,
// the resident set and glibc malloc's figures), MiB per name, one object
// per host; logged as one line per host.
async function memoryOf(hosts, log, when) {
	const out = [];
	for (const h of hosts) {
		const c = new Conn(h);
		await c.ready;
		const r = await c.request("GET", "/metrics");
		c.close();
		const m = {};
		for (const line of r.body.split("\n")) {
			const x = line.match(/^lora_(memory_bytes\{part="(\w+)"\}|process_resident_bytes|malloc_bytes\{state="(\w+)"\}|malloc_arenas|malloc_trims_total|malloc_trimmed_bytes_total) (\d+)/);
			if (!x) continue;
			const name = x[2] || (x[3] ? `malloc_${x[3]}` : x[1]);
			const v = +x[4];
			m[name] = /arenas|trims_total/.test(name) ? v : +(v / 1048576).toFixed(1);
		}
		out.push(m);
		log(`memory ${when} ${h}: ${JSON.stringify(m)}`);
	}
	return out;
}

async function main() {
	const o = C.args(process.argv.slice(2), { timeLimit: 300, peopleBatch: 500, edgeBatch: 1000,
		queryTimeout: 60, memCapMib: 4096 });
	o.timeLimit = +o.timeLimit; o.peopleBatch = +o.peopleBatch; o.edgeBatch = +o.edgeBatch;
	const log = (s) => console.log(`  [lora-http] ${s}`);
	const meta = C.readMeta(o.dir);
	const pids = o.pids.split(",");
	const conn = new Conn(o.leader);
	await conn.ready;
	const out = { system: "lora-http", notes: [] };
	C.memoryGuard(+o.memCapMib * 1048576, out, o.out, pids);
	if (o.skipLoad) {
		// lora-import made the range index; the vector index is a catalogue
		// entry over the stored vectors, created here as after an HTTP load.
		await query(conn, VEC_INDEX, {}).catch((e) => log(`vector index: ${e.message}`));
		const n = await query(conn, "MATCH (p:Person) RETURN count(*)", {});
		const e = await query(conn, "MATCH ()-[r:KNOWS]->() RETURN count(r)", {});
		out.load = { people: n.rows[0][0], edges: e.rows[0][0], imported: true,
			importS: o.importMs ? +o.importMs / 1000 : null,
			peopleTotal: meta.people, edgesTotal: meta.edges };
	} else {
		out.load = await load(conn, o, meta, log);
	}
	await converge(o.hosts.split(","));
	out.rssAfterLoad = rssOf(pids);
	out.memAfterLoad = await memoryOf(o.hosts.split(","), log, "after load");
	log(`building the expected answers for ${out.load.people} people, ${out.load.edges} edges`);
	const truth = C.loadTruth(o.dir, out.load.people, out.load.edges);
	const qp = C.queryParams(meta.seed, meta.people);
	// Building the answers can take longer than the server keeps an idle
	// connection (120 s): the queries go over a new one.
	conn.close();
	const qconn = new Conn(o.leader);
	await qconn.ready;
	// The floor: what one HTTP round trip costs with this client.
	const floor = [];
	for (let i = 0; i < 220; i++) {
		const r = await qconn.request("GET", "/health");
		if (i >= 20) floor.push(r.ms);
	}
	out.httpFloorMs = C.median(floor);
	let conn2 = qconn;
	const run = (f, p) => {
		if (conn2.waiting || conn2.dead) { // an abandoned request is still out
			conn2.close();
			conn2 = new Conn(o.leader);
		}
		return conn2.ready.then(() => query(conn2, f.q, f.p(p)));
	};
	await C.runAll(out, FORMS, truth, qp, run, { file: o.out, log, goOn: true,
		timeoutMs: +o.queryTimeout * 1000 });
	out.rssAfterQueries = rssOf(pids);
	out.memAfterQueries = await memoryOf(o.hosts.split(","), log, "after queries");
	fs.writeFileSync(o.out, JSON.stringify(out, null, 1));
	process.exit(0);
}

main().catch((e) => { console.error(`lora_http: ${e.stack || e}`); process.exit(1); });
