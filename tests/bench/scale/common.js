// common.js - shared by the scale benchmark's generator and drivers: the
// seeded random numbers, reading the generated CSV files back, the query
// parameters, the answers computed from the data, and the timing loop.
//
// The answers are computed here, in plain JavaScript over the CSV files, so
// every system's result is checked against something none of them produced.
// A system may have loaded only a prefix of the data (a load cut short by
// the time limit): answers are computed for the first `people` rows of
// people.csv and the first `edges` rows of knows.csv.
"use strict";
const fs = require("fs");
const path = require("path");

const DIMS = 128;
const CITIES = 50;

// sfc32: small, fast, and the same sequence on every machine for a seed.
function rng(seed) {
	let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
	const next = () => {
		a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
		const t = (a + b + d) >>> 0;
		d = (d + 1) >>> 0;
		a = b ^ (b >>> 9);
		b = (c + (c << 3)) >>> 0;
		c = (c << 21) | (c >>> 11);
		c = (c + t) >>> 0;
		return t;
	};
	for (let i = 0; i < 15; i++) next();
	return next;
}

// A vector coordinate: never an integer (kuzu's Node binding types a list
// parameter by its first element, so 1 or 0 would make it an INT64 list).
function coord(r) { return ((r() % 2000) + 0.5) / 1000 - 1; }

// The query parameters: a second random stream, independent of the data.
function queryParams(seed, people) {
	const r = rng(seed ^ 0x5eed);
	const pick = () => r() % people;
	const ids = (n) => Array.from({ length: n }, pick);
	const pairs = [];
	while (pairs.length < 12) {
		const a = pick(), b = pick();
		if (a !== b) pairs.push([a, b]);
	}
	const vecs = Array.from({ length: 5 }, () =>
		Array.from({ length: DIMS }, () => coord(r)));
	return { point: ids(64), twoHop: ids(24), pairs, vecs };
}

function readMeta(dir) {
	return JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8"));
}

// Streams a CSV file line by line (header skipped) without holding the
// whole text: people.csv is about 100 MB at the default size.
function eachLine(file, fn) {
	const fd = fs.openSync(file, "r");
	const buf = Buffer.alloc(1 << 20);
	let rest = "", first = true, n;
	try {
		while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
			const lines = (rest + buf.toString("utf8", 0, n)).split("\n");
			rest = lines.pop();
			for (const l of lines) {
				if (first) { first = false; continue; }
				if (l && fn(l) === false) return;
			}
		}
		if (rest && !first && fn(rest) === false) return;
	} finally {
		fs.closeSync(fd);
	}
}

// people.csv: id,name,age,city,emb ("a;b;c..."); calls fn(row) per person.
function eachPerson(dir, fn) {
	eachLine(path.join(dir, "people.csv"), (l) => {
		const f = l.split(",");
		return fn({ id: +f[0], name: f[1], age: +f[2], city: f[3],
			emb: f[4].split(";").map(Number) });
	});
}

// knows.csv: src,dst; calls fn(src, dst) per edge, stops after `limit`.
function eachEdge(dir, limit, fn) {
	let n = 0;
	eachLine(path.join(dir, "knows.csv"), (l) => {
		if (n++ >= limit) return false;
		const c = l.indexOf(",");
		return fn(+l.slice(0, c), +l.slice(c + 1));
	});
}

// Everything the answers need, for the first `people` people and the
// first `edges` edges (edges are only loaded after every person).
function loadTruth(dir, people, edges) {
	const names = new Array(people), cities = new Array(people);
	const embs = new Float32Array(people * DIMS);
	const norms = new Float64Array(people);
	let i = 0;
	eachPerson(dir, (p) => {
		if (i >= people) return false;
		names[i] = p.name;
		cities[i] = p.city;
		let s = 0;
		for (let k = 0; k < DIMS; k++) {
			embs[i * DIMS + k] = p.emb[k];
			s += embs[i * DIMS + k] * embs[i * DIMS + k];
		}
		norms[i] = Math.sqrt(s);
		i++;
	});
	const out = Array.from({ length: people }, () => []);
	const und = Array.from({ length: people }, () => []);
	eachEdge(dir, edges, (a, b) => {
		out[a].push(b);
		und[a].push(b);
		und[b].push(a);
	});
	return { people, edges, names, cities, embs, norms, out, und };
}

// Expected answers, one function per query; each takes the parameters of
// one run and returns what the rows must be (normalised, see check()).
const expect = {
	point: (t, id) => (id < t.people ? [[t.names[id]]] : []),
	twoHop: (t, id) => {
		if (id >= t.people) return [[0]];
		const seen = new Set();
		for (const x of t.out[id]) for (const f of t.out[x]) seen.add(f);
		return [[seen.size]];
	},
	city: (t) => {
		const m = new Map();
		for (const c of t.cities) m.set(c, (m.get(c) || 0) + 1);
		return [...m].sort((x, y) => (x[0] < y[0] ? -1 : 1));
	},
	// Undirected BFS, at most 6 hops; no row when b is farther or absent.
	shortest: (t, [a, b]) => {
		if (a >= t.people || b >= t.people) return [];
		const dist = new Map([[a, 0]]);
		let front = [a];
		for (let d = 1; d <= 6 && front.length; d++) {
			const next = [];
			for (const x of front)
				for (const y of t.und[x])
					if (!dist.has(y)) {
						if (y === b) return [[d]];
						dist.set(y, d);
						next.push(y);
					}
			front = next;
		}
		return [];
	},
	// Exact cosine over float32 coordinates; returns every id with its
	// cosine, best first (check() wants the top 10, best first, with a
	// tolerance for float32 rounding at the 10th place).
	cosine: (t, q) => {
		const qf = Float32Array.from(q);
		let qn = 0;
		for (const v of qf) qn += v * v;
		qn = Math.sqrt(qn);
		const all = [];
		for (let i = 0; i < t.people; i++) {
			let dot = 0;
			for (let k = 0; k < DIMS; k++) dot += t.embs[i * DIMS + k] * qf[k];
			all.push([i, dot / (t.norms[i] * qn)]);
		}
		return all.sort((x, y) => y[1] - x[1]);
	},
};

const COS_TOLERANCE = 1e-5; // float32 rounding differs between systems

// check(kind, expected, rows): null when rows answer the query, else a
// one-line description of the first difference. Rows are arrays of values.
function check(kind, want, rows) {
	const show = (x) => JSON.stringify(x).slice(0, 160);
	if (kind === "cosine") {
		const k = Math.min(10, want.length);
		if (rows.length !== k) return `expected ${k} rows, got ${rows.length}: ${show(rows)}`;
		const score = new Map(want.map(([i, s]) => [i, s]));
		const tenth = k ? want[k - 1][1] : 0;
		const ids = new Set();
		let prev = Infinity;
		for (const r of rows) {
			const s = score.get(Number(r[0]));
			if (s === undefined || s < tenth - COS_TOLERANCE || ids.has(r[0]))
				return `id ${r[0]} is not in the top ${k} (expected ${show(want.slice(0, k).map((x) => x[0]))}, got ${show(rows.map((x) => x[0]))})`;
			if (s > prev + COS_TOLERANCE)
				return `rows are not best first (got ${show(rows.map((x) => x[0]))})`;
			ids.add(r[0]);
			prev = s;
		}
		return null;
	}
	let got = rows.map((r) => r.map((v) => (typeof v === "bigint" ? Number(v) : v)));
	if (kind === "city") got = got.sort((x, y) => (x[0] < y[0] ? -1 : 1));
	return JSON.stringify(got) === JSON.stringify(want) ? null :
		`expected ${show(want)}, got ${show(got)}`;
}

const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

// The repetitions per query (warm: WARMUP runs first, not timed).
const PLAN = {
	point: { reps: 200, warmup: 20 },
	twoHop: { reps: 50, warmup: 5 },
	city: { reps: 10, warmup: 2 },
	shortest: { reps: 24, warmup: 3 },
	cosine: { reps: 10, warmup: 2 },
	cosineScan: { reps: 10, warmup: 2 },
};

// The parameters of run i of a query, cycling through the generated ones.
function paramFor(kind, qp, i) {
	switch (kind) {
	case "point": return qp.point[i % qp.point.length];
	case "twoHop": return qp.twoHop[i % qp.twoHop.length];
	case "shortest": return qp.pairs[i % qp.pairs.length];
	case "cosine": case "cosineScan": return qp.vecs[i % qp.vecs.length];
	default: return null;
	}
}

// A form given up on: it did not answer within the run time limit, or the
// process (or the server) grew past the memory cap while it ran. The
// engines cannot cancel a running query, so the caller decides whether to
// go on (a server: with a fresh connection) or to restart (in-process).
class Abandon extends Error {
	constructor(why) { super(why); this.why = why; }
}

const current = { kind: null, formIndex: 0, form: null, notes: [] };

function withTimeout(p, ms) {
	let t;
	const limit = new Promise((_, rej) => {
		t = setTimeout(() => rej(new Abandon(`did not finish in ${ms / 1000} s`)), ms);
	});
	return Promise.race([p, limit]).finally(() => clearTimeout(t));
}

// measure(kind, forms, truth, qp, runForm, opts): tries each form of a
// query (a system may answer one form wrongly or not support it) until one
// answers every run correctly; times that one. runForm(form, param)
// resolves to {rows, ms}. opts: timeoutMs (per run), startForm and notes
// (a resumed run), goOn (after an Abandon, try the next form instead of
// throwing it with .formIndex and .notes). Returns {ms, min, max, runs,
// form, notes} or {ms: null, wrong|failed, notes}.
async function measure(kind, forms, truth, qp, runForm, opts = {}) {
	const plan = PLAN[kind];
	const ek = kind === "cosineScan" ? "cosine" : kind;
	const cache = new Map();
	const want = (p) => {
		const key = JSON.stringify(p);
		if (!cache.has(key)) cache.set(key, expect[ek](truth, p));
		return cache.get(key);
	};
	const notes = [...(opts.notes || [])];
	for (let fi = opts.startForm || 0; fi < forms.length; fi++) {
		const form = forms[fi];
		Object.assign(current, { kind, formIndex: fi, form: form.name, notes });
		const times = [];
		let bad = null;
		for (let i = 0; i < plan.warmup + plan.reps && !bad; i++) {
			const p = paramFor(kind, qp, i);
			let res;
			try {
				res = await withTimeout(runForm(form, p), opts.timeoutMs || 60000);
			} catch (e) {
				if (e instanceof Abandon && !opts.goOn) {
					e.formIndex = fi;
					e.notes = [...notes, `form "${form.name}" rejected: ${e.why}`];
					throw e;
				}
				bad = e instanceof Abandon ? e.why :
					`error: ${String(e.message || e).split("\n")[0].slice(0, 200)}`;
				break;
			}
			const why = check(ek, want(p), res.rows);
			if (why) bad = `wrong answer for ${JSON.stringify(p).slice(0, 40)}: ${why}`;
			else if (i >= plan.warmup) times.push(res.ms);
		}
		if (!bad)
			return { ms: median(times), min: Math.min(...times),
				max: Math.max(...times), runs: times.length, form: form.name, notes };
		notes.push(`form "${form.name}" rejected: ${bad}`);
	}
	const wrong = notes.some((n) => n.includes("wrong answer"));
	return { ms: null, form: null, notes, wrong, failed: !wrong };
}

// runAll(out, forms, truth, qp, runForm, opts): measures every query kind
// into out.queries. A resumed run (opts.resume: the result file of a run
// that gave up on a form) keeps what that run measured and goes on after
// the abandoned form. On an Abandon it writes out (with out.abandoned) to
// opts.file and kills itself (SIGKILL), so the shell can start a fresh
// process (it finds "abandoned" in the file).
async function runAll(out, forms, truth, qp, runForm, opts) {
	const r = opts.resume;
	out.queries = {};
	for (const kind of Object.keys(forms)) {
		if (r && r.queries[kind]) { out.queries[kind] = r.queries[kind]; continue; }
		const again = r && r.abandoned && r.abandoned.kind === kind;
		if (!forms[kind].length) {
			out.queries[kind] = { ms: null, form: null, unsupported: true,
				notes: [opts.unsupported[kind]] };
			continue;
		}
		let m;
		try {
			m = await measure(kind, forms[kind], truth, qp, runForm, { ...opts,
				startForm: again ? r.abandoned.formIndex + 1 : 0,
				notes: again ? r.abandoned.notes : [] });
		} catch (e) {
			if (!(e instanceof Abandon)) throw e;
			abandon(out, opts.file, { kind, formIndex: e.formIndex, notes: e.notes });
		}
		out.queries[kind] = m;
		opts.log(`${kind}: ${m.ms === null ? "no correct answer" : m.ms.toFixed(3) + " ms"}` +
			(m.notes.length ? ` (${m.notes.join("; ")})` : ""));
	}
	current.kind = null;
	delete out.abandoned;
}

function abandon(out, file, a) {
	out.abandoned = a;
	fs.writeFileSync(file, JSON.stringify(out, null, 1));
	console.log(`  [${out.system}] gave up on ${a.kind}: ${a.notes[a.notes.length - 1]}`);
	// Not process.exit: exit handlers wait for the engine's threads, and
	// the runaway query in one of them keeps allocating meanwhile (seen:
	// lora-node's shortestPath grew to 22 GiB before the OOM killer came).
	process.kill(process.pid, "SIGKILL");
}

// Gives up on the running form when any of pids (default this process)
// grows past capBytes: the engines cannot cancel a query, and a runaway
// one must not take the shared machine's memory.
function memoryGuard(capBytes, out, file, pids = ["self"]) {
	const t = setInterval(() => {
		const big = pids.map((p) => rss(p).rss).find((x) => x > capBytes);
		if (big === undefined) return;
		const cap = `grew past the memory cap (${(big / 1048576).toFixed(0)} MiB > ` +
			`${capBytes / 1048576} MiB)`;
		if (!current.kind) // loading (or done): nothing to resume
			abandon(out, file, { kind: "load", formIndex: 0, notes: [`the load ${cap}`] });
		abandon(out, file, { kind: current.kind, formIndex: current.formIndex,
			notes: [...current.notes, `form "${current.form}" rejected: ${cap}`] });
	}, 100);
	t.unref();
}

// Resident set of a process in bytes (VmRSS and VmHWM of /proc/PID/status).
function rss(pid = "self") {
	const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
	const kb = (k) => +(s.match(new RegExp(`${k}:\\s+(\\d+)`)) || [0, 0])[1] * 1024;
	return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function args(argv, defaults) {
	const o = { ...defaults };
	for (let i = 0; i < argv.length; i++) {
		if (!argv[i].startsWith("--")) continue;
		const k = argv[i].slice(2).replace(/-(.)/g, (_, c) => c.toUpperCase());
		o[k] = argv[i + 1];
		i++;
	}
	return o;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

module.exports = { DIMS, CITIES, rng, coord, queryParams, readMeta, eachPerson,
	eachEdge, loadTruth, expect, check, measure, runAll, memoryGuard, Abandon, median, rss, args,
	nowMs, PLAN };
