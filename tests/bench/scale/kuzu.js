// kuzu.js - the same graph and query set in kuzu 0.11.3 (embedded, on disk
// in --db), loaded with COPY FROM the CSV files.
//
// usage: node kuzu.js --dir DATA --db DBDIR --out RESULT.json
//          [--query-timeout S] [--mem-cap-mib N] [--resume RESULT.json]
// (--resume: as in lora_node.js; the resumed run loads into a fresh DBDIR)
// people.csv's emb column (';'-separated) is turned into FLOAT[128] by a
// COPY ... FROM (LOAD FROM ... RETURN CAST(string_split(emb, ';') AS
// FLOAT[128])). Queries run as prepared statements. Top-10 cosine is an
// exact scan (array_cosine_similarity): kuzu's vector index is HNSW, an
// approximate search, so it is not the same query.
"use strict";
const fs = require("fs");
const path = require("path");
const C = require("./common");
const kuzu = require("kuzu");

const FORMS = {
	point: [{ name: "MATCH (p:Person {id: $id}) RETURN p.name",
		q: "MATCH (p:Person {id: $id}) RETURN p.name AS name", p: (id) => ({ id }) }],
	twoHop: [{ name: "MATCH (p:Person {id:$id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)",
		q: "MATCH (p:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f) AS n",
		p: (id) => ({ id }) }],
	city: [{ name: "MATCH (p:Person) RETURN p.city, count(*)",
		q: "MATCH (p:Person) RETURN p.city AS city, count(*) AS n", p: () => ({}) }],
	shortest: [{ name: "MATCH p = (a)-[:KNOWS* SHORTEST 1..6]-(b) WHERE a.id = $a AND b.id = $b",
		q: "MATCH p = (a:Person)-[:KNOWS* SHORTEST 1..6]-(b:Person) " +
			"WHERE a.id = $a AND b.id = $b RETURN length(p) AS l",
		p: ([a, b]) => ({ a, b }) }],
	cosine: [],
	cosineScan: [{ name: "ORDER BY array_cosine_similarity(p.emb, CAST($q AS FLOAT[128])) DESC LIMIT 10",
		q: "MATCH (p:Person) RETURN p.id AS id, " +
			"array_cosine_similarity(p.emb, CAST($q AS FLOAT[128])) AS score " +
			"ORDER BY score DESC LIMIT 10", p: (q) => ({ q }) }],
};

async function main() {
	const o = C.args(process.argv.slice(2), { queryTimeout: 60, memCapMib: 4096 });
	const resume = o.resume ? JSON.parse(fs.readFileSync(o.resume, "utf8")) : null;
	if (resume) fs.rmSync(o.db, { recursive: true, force: true });
	const log = (s) => console.log(`  [kuzu] ${s}`);
	const meta = C.readMeta(o.dir);
	const db = new kuzu.Database(o.db);
	const conn = new kuzu.Connection(db);
	const ddl = async (q) => (await (await conn.query(q)).getAll());
	const out = { system: "kuzu", notes: [], restarts: resume ? (resume.restarts || 0) + 1 : 0 };
	C.memoryGuard(+o.memCapMib * 1048576, out, o.out);
	await ddl("CREATE NODE TABLE Person(id INT64, name STRING, age INT64, city STRING, " +
		"emb FLOAT[128], PRIMARY KEY(id))");
	await ddl("CREATE REL TABLE KNOWS(FROM Person TO Person)");
	const csv = (f) => path.resolve(o.dir, f).replace(/'/g, "''");
	const t0 = C.nowMs();
	await ddl(`COPY Person FROM (LOAD FROM '${csv("people.csv")}' (header=true) ` +
		"RETURN CAST(id AS INT64), name, CAST(age AS INT64), city, " +
		"CAST(string_split(emb, ';') AS FLOAT[128]))");
	const t1 = C.nowMs();
	await ddl(`COPY KNOWS FROM '${csv("knows.csv")}' (header=true)`);
	const t2 = C.nowMs();
	const count = async (q) => Number(Object.values((await ddl(q))[0])[0]);
	out.load = { people: await count("MATCH (p:Person) RETURN count(*)"),
		edges: await count("MATCH ()-[r:KNOWS]->() RETURN count(r)"),
		peopleS: (t1 - t0) / 1000, edgesS: (t2 - t1) / 1000, limitHit: false,
		peopleTotal: meta.people, edgesTotal: meta.edges };
	log(`people: ${out.load.people} in ${out.load.peopleS.toFixed(1)} s, ` +
		`edges: ${out.load.edges} in ${out.load.edgesS.toFixed(1)} s`);
	out.rssAfterLoad = [C.rss()];
	if (resume) { out.load = resume.load; out.rssAfterLoad = resume.rssAfterLoad; }
	const truth = C.loadTruth(o.dir, out.load.people, out.load.edges);
	const qp = C.queryParams(meta.seed, meta.people);
	const prepared = new Map();
	const run = async (f, p) => {
		if (!prepared.has(f.q)) prepared.set(f.q, await conn.prepare(f.q));
		const t = C.nowMs();
		const r = await conn.execute(prepared.get(f.q), f.p(p));
		const rows = (await r.getAll()).map((x) => Object.values(x));
		return { rows, ms: C.nowMs() - t };
	};
	await C.runAll(out, FORMS, truth, qp, run, { resume, file: o.out, log,
		timeoutMs: +o.queryTimeout * 1000,
		unsupported: { cosine: "kuzu's vector index is HNSW (approximate): no exact index search" } });
	out.rssAfterQueries = [C.rss()];
	fs.writeFileSync(o.out, JSON.stringify(out, null, 1));
	process.exit(0); // do not wait for a query an earlier form left running
}

main().catch((e) => { console.error(`kuzu: ${e.stack || e}`); process.exit(1); });
