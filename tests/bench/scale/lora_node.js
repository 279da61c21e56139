// lora_node.js - the same load and query set in @loradb/lora-node (LoraDB's
// in-memory engine, in this process), through its documented API:
// `createDatabase()` and `db.execute(query, params)`.
//
// usage: node lora_node.js --dir DATA --out RESULT.json [--time-limit S]
//          [--people-batch N] [--edge-batch N] [--query-timeout S]
//          [--mem-cap-mib N] [--resume RESULT.json]
// A query form that runs past --query-timeout or grows the process past
// --mem-cap-mib cannot be cancelled: the result so far is written and the
// process kills itself; the shell starts it again with --resume, which loads the
// same number of people and edges and goes on after that form.
// Vectors are passed as {kind: "vector", coordinateType: "FLOAT32", ...}
// parameters (lora-node has no vector() function). Its vector index is
// created with the exact 'flat' provider so that top-10 is comparable.
"use strict";
const fs = require("fs");
const C = require("./common");
const { createDatabase } = require("@loradb/lora-node");

const vec = (values) => ({ kind: "vector", dimension: values.length,
	coordinateType: "FLOAT32", values });

// Aliases everywhere: lora-node names result keys by the alias. The forms
// are tried in order; a form answered wrongly is reported and skipped.
const FORMS = {
	point: [{ name: "MATCH (p:Person {id: $id}) RETURN p.name",
		q: "MATCH (p:Person {id: $id}) RETURN p.name AS name", p: (id) => ({ id }) }],
	twoHop: [{ name: "MATCH (p:Person {id:$id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)",
		q: "MATCH (p:Person {id:$id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f) AS n",
		p: (id) => ({ id }) }],
	city: [{ name: "MATCH (p:Person) RETURN p.city, count(*)",
		q: "MATCH (p:Person) RETURN p.city AS city, count(*) AS n", p: () => ({}) }],
	shortest: [
		{ name: "MATCH (a {id:$a}), (b {id:$b}) MATCH p = shortestPath((a)-[:KNOWS*..6]-(b))",
			q: "MATCH (a:Person {id: $a}), (b:Person {id: $b}) " +
				"MATCH p = shortestPath((a)-[:KNOWS*..6]-(b)) RETURN length(p) AS l",
			p: ([a, b]) => ({ a, b }) },
		{ name: "MATCH p = shortestPath((a:Person {id:$a})-[:KNOWS*..6]-(b:Person {id:$b}))",
			q: "MATCH p = shortestPath((a:Person {id: $a})-[:KNOWS*..6]-(b:Person {id: $b})) " +
				"RETURN length(p) AS l",
			p: ([a, b]) => ({ a, b }) }],
	// CALL ... YIELD is not supported; the standalone CALL returns nodes
	// with their internal id only, mapped to person ids after the load.
	cosine: [{ name: "CALL db.index.vector.queryNodes('person_emb', 10, $q) (standalone, flat index)",
		q: "CALL db.index.vector.queryNodes('person_emb', 10, $q)", p: (q) => ({ q: vec(q) }),
		map: true }],
	cosineScan: [
		{ name: "RETURN ..., vector.similarity(p.emb, $q) AS score ORDER BY score DESC LIMIT 10",
			q: "MATCH (p:Person) RETURN p.id AS id, vector.similarity(p.emb, $q) AS score " +
				"ORDER BY score DESC LIMIT 10", p: (q) => ({ q: vec(q) }) },
		{ name: "ORDER BY vector.similarity(p.emb, $q) DESC LIMIT 10 (expression, no alias)",
			q: "MATCH (p:Person) RETURN p.id AS id ORDER BY vector.similarity(p.emb, $q) DESC LIMIT 10",
			p: (q) => ({ q: vec(q) }) }],
};

// Loads people then edges in batches until the time limit, or exactly
// `upTo` people and edges (a resumed run).
async function load(db, o, meta, log, upTo) {
	const t0 = C.nowMs(), deadline = upTo ? Infinity : t0 + o.timeLimit * 1000;
	const maxP = upTo ? upTo.people : meta.people, maxE = upTo ? upTo.edges : meta.edges;
	const res = { people: 0, edges: 0, peopleS: 0, edgesS: 0, limitHit: false,
		peopleTotal: meta.people, edgesTotal: meta.edges,
		timeLimitS: o.timeLimit };
	await db.execute("CREATE INDEX person_id FOR (p:Person) ON (p.id)");
	await db.execute("CREATE VECTOR INDEX person_emb FOR (p:Person) ON (p.emb) OPTIONS " +
		"{indexConfig: {`vector.dimensions`: 128, `vector.similarity_function`: 'cosine', " +
		"`vector.indexProvider`: 'flat'}}");
	const people = [];
	C.eachPerson(o.dir, (p) => { people.push(p); });
	people.length = maxP;
	const q = "UNWIND $rows AS r CREATE (:Person {id: r.id, name: r.name, age: r.age, " +
		"city: r.city, emb: r.emb})";
	for (let i = 0; i < people.length; i += o.peopleBatch) {
		if (C.nowMs() > deadline) { res.limitHit = true; break; }
		const rows = people.slice(i, i + o.peopleBatch).map((p) => ({ ...p, emb: vec(p.emb) }));
		await db.execute(q, { rows });
		res.people += rows.length;
	}
	people.length = 0;
	res.peopleS = (C.nowMs() - t0) / 1000;
	log(`people: ${res.people} in ${res.peopleS.toFixed(1)} s`);
	if (res.limitHit || maxP < meta.people) return res;
	const t1 = C.nowMs();
	const pairs = [];
	C.eachEdge(o.dir, maxE, (a, b) => { pairs.push([a, b]); });
	const qe = "UNWIND $pairs AS pr MATCH (a:Person {id: pr[0]}), (b:Person {id: pr[1]}) " +
		"CREATE (a)-[:KNOWS]->(b)";
	for (let i = 0; i < pairs.length; i += o.edgeBatch) {
		if (C.nowMs() > deadline) { res.limitHit = true; break; }
		const chunk = pairs.slice(i, i + o.edgeBatch);
		await db.execute(qe, { pairs: chunk });
		res.edges += chunk.length;
	}
	res.edgesS = (C.nowMs() - t1) / 1000;
	log(`edges: ${res.edges} in ${res.edgesS.toFixed(1)} s${res.limitHit ? " (time limit)" : ""}`);
	return res;
}

async function main() {
	const o = C.args(process.argv.slice(2), { timeLimit: 300, peopleBatch: 500, edgeBatch: 1000,
		queryTimeout: 60, memCapMib: 4096 });
	o.timeLimit = +o.timeLimit; o.peopleBatch = +o.peopleBatch; o.edgeBatch = +o.edgeBatch;
	const log = (s) => console.log(`  [lora-node] ${s}`);
	const meta = C.readMeta(o.dir);
	const resume = o.resume ? JSON.parse(fs.readFileSync(o.resume, "utf8")) : null;
	const db = await createDatabase();
	const out = { system: "lora-node", notes: [], restarts: resume ? (resume.restarts || 0) + 1 : 0 };
	C.memoryGuard(+o.memCapMib * 1048576, out, o.out);
	const loaded = await load(db, o, meta, log, resume && resume.load);
	out.load = resume ? resume.load : loaded;
	out.rssAfterLoad = resume ? resume.rssAfterLoad : [C.rss()];
	// internal node id -> person id, for the standalone CALL's answer
	const ids = new Map();
	for (const r of (await db.execute("MATCH (p:Person) RETURN id(p) AS i, p.id AS id")).rows)
		ids.set(r.i, r.id);
	const truth = C.loadTruth(o.dir, out.load.people, out.load.edges);
	const qp = C.queryParams(meta.seed, meta.people);
	const run = async (f, p) => {
		const t0 = C.nowMs();
		const res = await db.execute(f.q, f.p(p));
		const ms = C.nowMs() - t0;
		const rows = f.map ? res.rows.map((r) => [ids.get(r.node.id), r.score]) :
			res.rows.map((r) => Object.values(r));
		return { rows, ms };
	};
	await C.runAll(out, FORMS, truth, qp, run, { resume, file: o.out, log,
		timeoutMs: +o.queryTimeout * 1000 });
	out.rssAfterQueries = [C.rss()];
	fs.writeFileSync(o.out, JSON.stringify(out, null, 1));
	process.exit(0); // a runaway query of an earlier run is not here, but be sure
}

main().catch((e) => { console.error(`lora_node: ${e.stack || e}`); process.exit(1); });
