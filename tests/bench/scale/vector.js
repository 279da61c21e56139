// vector.js - the vector index benchmark against a running three-node
// LoraDB-C cluster, through its HTTP API (tests/bench/bench_vector.sh
// starts the cluster).
//
// usage: node vector.js --leader HOST:PORT --hosts H1,H2,H3 --out FILE
//          [--n 100000] [--seed 42] [--queries 200] [--batch 1000] [--inflight 1]
//          [--data clustered|random] [--rel 1] [--vectors list|base64]
// --vectors: how a row's vector travels in the /query body: a JSON list
// of 128 numbers (list, the default), or a FLOAT32 vector parameter
// {"kind":"vector","coordinateType":"FLOAT32","base64":...}, its
// little-endian bytes in base64 (docs/node.md, "Values").
// With --rel 1 the vectors are on relationships (FOR ()-[v:R]-(),
// queryRelationships): each batch's relationships join one pair of 100
// nodes :A.
// 1. CREATE VECTOR INDEX vec (cosine, 128-d, hnsw.m 16, ef_construction
//    100), then N vectors in batches of UNWIND ... CREATE to the leader,
//    --inflight statements at a time: incremental inserts per second into
//    the ONLINE index, from the first request until all three nodes
//    applied the last batch.
// 2. DROP INDEX vec, CREATE it again: the build of a graph over existing
//    data, until all three nodes applied it.
// 3. QUERIES query vectors (drawn as the data is) against a follower:
//    queryNodes top-10 through the graph and with {exact: true}: median
//    latency of each, mean recall@10 of the graph against the exact
//    answer. The same queries on the other two nodes must answer the same.
"use strict";
const fs = require("fs");
const C = require("./common");
const { Conn } = require("./httpc");
const { makeVectors } = require("./vecdata");

const DIMS = 128;
const o = C.args(process.argv.slice(2), { n: 100000, seed: 42, queries: 200, batch: 1000, inflight: 1,
	data: "clustered", leader: "", hosts: "", out: "", rel: "0", vectors: "list" });
if (!["list", "base64"].includes(o.vectors)) throw new Error(`--vectors ${o.vectors}: list or base64`);

// a row's vector as the body carries it (--vectors)
function wireVector(v) {
	if (o.vectors === "list") return v;
	const b = Buffer.alloc(4 * v.length);
	for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i], 4 * i);
	return { kind: "vector", coordinateType: "FLOAT32", dimension: v.length, base64: b.toString("base64") };
}
const N = +o.n;
const REL = o.rel === "1";

// the vectors and query vectors (vecdata.js: the same for vector_kuzu.js)
const vectorMaker = (seed) => makeVectors(seed, o.data, DIMS);

// a write carries a requestId, so that a retry after a 503 (outcome
// unknown, e.g. a long build) is applied once
let reqs = 0;
async function query(conn, q, params, write = false) {
	const extra = write ? { requestId: `vec-${process.pid}-${reqs++}` } : {};
	const body = JSON.stringify({ query: q, params, format: "rowArrays", ...extra });
	for (let attempt = 0; ; attempt++) {
		let r;
		try {
			r = await conn.c.request("POST", "/query", body);
		} catch (e) { // a node that lost its leadership closed the connection
			if (attempt >= 600) throw e;
			await new Promise((res) => setTimeout(res, 200));
			conn.c = new Conn(conn.host);
			await conn.c.ready.catch(() => {});
			continue;
		}
		if (r.status === 200) return { rows: JSON.parse(r.body).rows, ms: r.ms };
		if (r.status !== 503 || attempt >= 600)
			throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
		await new Promise((res) => setTimeout(res, 100));
	}
}

// a connection that query() replaces when the node closes it
function conn(host) { return { host, c: new Conn(host) }; }

// the node's own applied index from /cluster/status ("self" in "nodes"):
// /admin/digest, which says it too, hashes the whole store on every call,
// a CPU cost that grew with the data and was counted in the figures
async function applied(conn) {
	for (let attempt = 0; ; attempt++) {
		try {
			const r = await conn.c.request("GET", "/cluster/status");
			if (r.status === 200) {
				const st = JSON.parse(r.body);
				return st.nodes.find((x) => x.id === st.self).appliedIndex;
			}
		} catch (e) {
			if (attempt >= 600) throw e;
			conn.c = new Conn(conn.host);
			await conn.c.ready.catch(() => {});
		}
		await new Promise((res) => setTimeout(res, 200));
	}
}

// waits until every node applied what the leader has; returns ms waited
async function replicated(conns, leader) {
	const t0 = C.nowMs(), want = await applied(leader);
	for (const c of conns)
		while ((await applied(c)) < want) await new Promise((res) => setTimeout(res, 20));
	return C.nowMs() - t0;
}

const INDEX = (name, extra = "") => `CREATE VECTOR INDEX ${name} ` +
	(REL ? "FOR ()-[v:R]-() ON (v.emb) " : "FOR (v:V) ON (v.emb) ") +
	"OPTIONS {indexConfig: {`vector.dimensions`: 128, `vector.similarity_function`: 'cosine', " +
	"`hnsw.m`: 16, `hnsw.ef_construction`: 100" + extra + "}}";

// CPU seconds (user + system) of each --pids process so far (Linux
// /proc, 100 ticks a second): each phase's CPU per node is the figure to
// compare on a shared machine, where wall times include the wait for a CPU
function cpuS() {
	if (!o.pids) return [];
	return o.pids.split(",").map((p) => {
		const f = fs.readFileSync(`/proc/${p}/stat`, "latin1");
		const v = f.slice(f.lastIndexOf(")") + 2).split(" ");
		return (+v[11] + +v[12]) / 100;
	});
}
const cpuDiff = (a, b) => b.map((x, i) => +(x - a[i]).toFixed(1));

function median(a) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }

async function main() {
	// writes go to the first leader; a follower forwards them if it changes
	const leader = conn(o.leader);
	const conns = o.hosts.split(",").map((h) => conn(h));
	await leader.c.ready;
	for (const c of conns) await c.c.ready;
	const res = { n: N, dims: DIMS, data: o.data, seed: +o.seed, rel: REL };
	if (REL) await query(leader, "UNWIND range(0, 99) AS k CREATE (:A {k: k})", {}, true);
	const next = vectorMaker(+o.seed);
	// the inserts are measured into an ONLINE index (created over an
	// empty label: no build), one statement of --batch vectors in flight,
	// from the first request until all three nodes applied the last one
	if (o.noIndex !== "1") {
		await query(leader, INDEX("vec"), {}, true);
		const r = await query(leader, "SHOW INDEXES", {});
		if (!/"vec",.*?"ONLINE"/.test(JSON.stringify(r.rows)))
			throw new Error(`index vec not ONLINE before the load: ${JSON.stringify(r.rows)}`);
	}
	res.batch = +o.batch;
	res.vectors = o.vectors;
	res.inflight = +o.inflight;
	// --inflight connections to the leader, each sending its next batch
	// as soon as the last one was answered (the batches are drawn in order)
	const writers = [leader];
	for (let k = 1; k < res.inflight; k++) {
		writers.push(conn(o.leader));
		await writers[k].c.ready;
	}
	let t0 = C.nowMs(), nextRow = 0, c0 = cpuS();
	await Promise.all(writers.map(async (w) => {
		while (nextRow < N) {
			const rows = [];
			const a = Math.floor(nextRow / +o.batch) % 100;
			for (const end = Math.min(N, nextRow + +o.batch); nextRow < end; nextRow++)
				rows.push({ id: nextRow, emb: wireVector(next()) });
			if (REL)
				await query(w, "MATCH (a:A {k: $a}), (b:A {k: $b}) UNWIND $rows AS r " +
					"CREATE (a)-[:R {id: r.id, emb: vector(r.emb, 128, FLOAT32)}]->(b)",
				{ rows, a, b: (a + 1) % 100 }, true);
			else
				await query(w, "UNWIND $rows AS r CREATE (:V {id: r.id, emb: vector(r.emb, 128, FLOAT32)})",
					{ rows }, true);
		}
	}));
	const loadMs = C.nowMs() - t0 + await replicated(conns, leader);
	res.insertsPerS = Math.round(N / (loadMs / 1000));
	res.loadCpuS = cpuDiff(c0, cpuS());
	console.error(`load: ${N} vectors in ${loadMs.toFixed(0)} ms (${res.insertsPerS}/s, replicated), ` +
		`CPU s per node ${res.loadCpuS.join(" / ")}`);
	if (o.noIndex === "1") process.exit(0);
	// the same graph built over the existing vectors (an equivalent
	// index may not exist next to it: vec is dropped first)
	await query(leader, "DROP INDEX vec", {}, true);
	await replicated(conns, leader);
	t0 = C.nowMs();
	c0 = cpuS();
	await query(leader, INDEX("vec"), {}, true);
	await replicated(conns, leader);
	// the graph is built in the background (POPULATING, then ONLINE:
	// SHOW INDEXES): the build ends when every node lists it ONLINE
	for (const c of conns)
		for (let last = "";;) {
			let r;
			try {
				r = await c.c.request("POST", "/query", JSON.stringify({
					query: "SHOW INDEXES", format: "rowArrays" }));
			} catch (e) { // the node closed the connection: a new one
				c.c = new Conn(c.host);
				await c.c.ready.catch(() => {});
				r = { status: 0, body: "" };
			}
			const m = r.status === 200 && /"vec",.*?"(ONLINE|POPULATING)",([0-9.]+)/.exec(r.body);
			if (m && m[1] === "ONLINE") break;
			const now = m ? `${m[1]} ${(+m[2]).toFixed(0)}%` : `status ${r.status}`;
			if (now !== last) console.error(`build: ${c.host}: ${now} at ${(C.nowMs() - t0).toFixed(0)} ms`);
			last = now;
			await new Promise((res) => setTimeout(res, 200));
		}
	res.buildMs = C.nowMs() - t0;
	res.buildCpuS = cpuDiff(c0, cpuS());
	console.error(`build over existing data: ${res.buildMs} ms (replicated), ` +
		`CPU s per node ${res.buildCpuS.join(" / ")}`);
	const qs = [];
	const qnext = vectorMaker(+o.seed); // same centres, later draws
	for (let i = 0; i < N; i++) qnext();
	for (let i = 0; i < +o.queries; i++) qs.push(qnext());
	const Q = REL ? "CALL db.index.vector.queryRelationships('vec', 10, $q, $o) YIELD relationship " +
		"RETURN relationship.id"
		: "CALL db.index.vector.queryNodes('vec', 10, $q, $o) YIELD node RETURN node.id";
	const follower = conns.find((c) => c.host !== o.leader) || conns[0];
	const hl = [], el = [];
	let hit = 0, same = 0;
	for (const q of qs) {
		const h = await query(follower, Q, { q, o: {} });
		const e = await query(follower, Q, { q, o: { exact: true } });
		hl.push(h.ms);
		el.push(e.ms);
		const truth = new Set(e.rows.map((r) => r[0]));
		hit += h.rows.filter((r) => truth.has(r[0])).length;
		const others = [];
		for (const c of conns) if (c !== follower) others.push((await query(c, Q, { q, o: {} })).rows);
		same += others.every((rows) => JSON.stringify(rows) === JSON.stringify(h.rows));
	}
	res.recallAt10 = hit / (10 * qs.length);
	res.hnswMedianMs = median(hl);
	res.exactMedianMs = median(el);
	res.sameOnAllNodes = `${same}/${qs.length}`;
	console.error(`top-10: hnsw median ${res.hnswMedianMs.toFixed(2)} ms, exact median ` +
		`${res.exactMedianMs.toFixed(2)} ms, recall@10 ${res.recallAt10.toFixed(3)}, ` +
		`same answer on all nodes ${res.sameOnAllNodes}`);
	fs.writeFileSync(o.out, JSON.stringify(res, null, 1));
	leader.c.close();
	for (const c of conns) c.c.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
