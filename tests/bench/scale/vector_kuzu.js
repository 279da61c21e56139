// vector_kuzu.js - the vector index benchmark of vector.js against Kùzu
// 0.11.3 (embedded, its HNSW index from the statically linked vector
// extension), on the same vectors and queries (vecdata.js), so that
// bench_vector.sh can print both side by side.
//
// usage: node vector_kuzu.js --db DIR --out FILE [--n 100000] [--seed 42]
//          [--queries 200] [--data clustered|random]
// 1. The N vectors as FLOAT[128] (COPY FROM a CSV file, not timed), then
//    CREATE_VECTOR_INDEX (cosine, Kùzu's defaults): the build time.
// 2. The same QUERIES query vectors: QUERY_VECTOR_INDEX top-10 (Kùzu's
//    default efs), median latency in process (no HTTP, unlike LoraDB's
//    figures), and mean recall@10 against the exact answer, computed here
//    by a full scan in JavaScript (cosine on the float32 values).
"use strict";
const fs = require("fs");
const path = require("path");
const C = require("./common");
const { makeVectors } = require("./vecdata");
const kuzu = require("kuzu");

const DIMS = 128;
const o = C.args(process.argv.slice(2), { n: 100000, seed: 42, queries: 200, data: "clustered",
	db: "", out: "" });
const N = +o.n;
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

async function main() {
	if (!o.db || !o.out) throw new Error("--db and --out are required");
	fs.mkdirSync(o.db, { recursive: true });
	const next = makeVectors(+o.seed, o.data, DIMS);
	const data = [];
	const csv = path.join(o.db, "vectors.csv");
	const lines = ["id,emb"];
	for (let i = 0; i < N; i++) {
		const v = next();
		data.push(Float32Array.from(v));
		lines.push(`${i},"[${v.join(",")}]"`);
	}
	fs.writeFileSync(csv, lines.join("\n") + "\n");
	const qs = [];
	for (let i = 0; i < +o.queries; i++) qs.push(next());
	const db = new kuzu.Database(path.join(o.db, "kuzu"));
	const c = new kuzu.Connection(db);
	await c.query(`CREATE NODE TABLE V(id INT64, emb FLOAT[${DIMS}], PRIMARY KEY(id))`);
	await c.query(`COPY V FROM '${csv}' (header = true)`);
	const cnt = await (await c.query("MATCH (v:V) RETURN count(*) AS n")).getAll();
	if (Number(cnt[0].n) !== N) throw new Error(`loaded ${cnt[0].n} of ${N}`);
	let t0 = C.nowMs();
	await c.query("CALL CREATE_VECTOR_INDEX('V', 'vec', 'emb', metric := 'cosine')");
	const res = { system: "kuzu 0.11.3", n: N, dims: DIMS, data: o.data, seed: +o.seed,
		buildMs: C.nowMs() - t0 };
	console.error(`kuzu: HNSW build over ${N} vectors: ${res.buildMs.toFixed(0)} ms`);
	// the exact top 10 of each query, by cosine similarity
	const norm = data.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
	const exact = (q) => {
		const qn = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
		const top = [];
		for (let i = 0; i < N; i++) {
			const v = data[i];
			let d = 0;
			for (let k = 0; k < DIMS; k++) d += v[k] * q[k];
			const sim = d / (norm[i] * qn);
			if (top.length < 10 || sim > top[top.length - 1][0]) {
				top.push([sim, i]);
				top.sort((a, b) => b[0] - a[0]);
				if (top.length > 10) top.pop();
			}
		}
		return new Set(top.map((t) => t[1]));
	};
	const ps = await c.prepare(`CALL QUERY_VECTOR_INDEX('V', 'vec', $q, 10) RETURN node.id AS id`);
	const lat = [];
	let hit = 0;
	for (const q of qs) {
		t0 = C.nowMs();
		const rows = await (await c.execute(ps, { q })).getAll();
		lat.push(C.nowMs() - t0);
		if (rows.length !== 10) throw new Error(`query gave ${rows.length} rows`);
		const truth = exact(q);
		hit += rows.filter((r) => truth.has(Number(r.id))).length;
	}
	res.queries = qs.length;
	res.medianMs = median(lat);
	res.recallAt10 = hit / (10 * qs.length);
	console.error(`kuzu: top-10 median ${res.medianMs.toFixed(2)} ms (in process), recall@10 ` +
		`${res.recallAt10.toFixed(3)}`);
	fs.writeFileSync(o.out, JSON.stringify(res, null, 1));
}

main().catch((e) => { console.error(e); process.exit(1); });
