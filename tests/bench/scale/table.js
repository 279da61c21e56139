// table.js - prints the scale benchmark's one table from the drivers'
// result files, then which query form each system ran and why a form was
// rejected. Exits 1 when a system answered a query wrongly in every form it
// was tried in (an unsupported query is not a failure: it says so).
//
// usage: node table.js --dir WORK [--meta DATA/meta.json]
// Reads WORK/{lora-http,lora-node,kuzu}.json and WORK/inprocess.json when
// present; a missing file is a column of "-" with the reason from
// WORK/<name>.skipped.
"use strict";
const fs = require("fs");
const path = require("path");
const { args } = require("./common");

const MiB = 1024 * 1024;
const COLS = [["lora-http", "LoraDB-C (HTTP)"], ["inprocess", "LoraDB-C in-process"],
	["lora-node", "lora-node 0.15.0"], ["kuzu", "kuzu 0.11.3"]];
const QUERIES = [
	["point", "point lookup by indexed id", 0.2],
	["twoHop", "2-hop distinct count", 1],
	["city", "count grouped by city (50)", 10],
	["shortest", "shortestPath 1..6", 5],
	["cosine", "cosine top-10, vector index", 25],
	["cosineScan", "cosine top-10, ORDER BY scan", 25],
];

function read(dir, name) {
	const f = path.join(dir, `${name}.json`);
	if (fs.existsSync(f)) return JSON.parse(fs.readFileSync(f, "utf8"));
	const s = path.join(dir, `${name}.skipped`);
	return { skipped: fs.existsSync(s) ? fs.readFileSync(s, "utf8").trim() : "not run" };
}

const ms = (x) => (x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0));
const mib = (b) => (b / MiB).toFixed(0);

function cell(r, kind, goal, marks) {
	if (r.skipped) return "-";
	const q = (r.queries || {})[kind];
	if (!q) return "-";
	if (q.unsupported) return "n/a";
	let s = q.ms === null ? (q.wrong ? "WRONG" : "no answer") : ms(q.ms);
	if (q.notes && q.notes.length) { marks.push([r.system, kind, q]); s += ` [${marks.length}]`; }
	return q.ms !== null && q.ms > goal ? `${s} *` : s;
}

// "12.3 s, 10000/10000, 813/s": time, loaded of generated, rate.
function loadCell(r, which) {
	if (r.skipped || !r.load) return "-";
	const l = r.load;
	const n = l[which], total = which === "people" ? l.peopleTotal : l.edgesTotal;
	if (l.imported)
		return which === "people" && l.importS !== null ?
			`lora-import ${l.importS.toFixed(1)} s (people + edges), ${n}/${total}` :
			`${n}/${total} (imported)`;
	if (l.combined) return which === "people" ?
		`${l.peopleS.toFixed(1)} s for ${l.people} people + ${l.edges} edges (sto_apply)` : "(line above)";
	const s = which === "people" ? l.peopleS : l.edgesS;
	if (which === "edges" && l.people < l.peopleTotal) return "not started (time limit)";
	const rate = s > 0 ? `, ${(n / s).toFixed(0)}/s` : "";
	const cut = n < total && l.limitHit ? ` (time limit ${l.timeLimitS} s)` : "";
	return `${s.toFixed(1)} s, ${n}/${total}${rate}${cut}`;
}

function rssCell(r, key) {
	if (r.skipped || !r[key]) return "-";
	const v = r[key].map((x) => mib(x.rss));
	const over = r[key].some((x) => x.rss > 300 * MiB);
	return v.join(" / ") + (over ? " *" : "");
}

function main() {
	const o = args(process.argv.slice(2), {});
	const res = Object.fromEntries(COLS.map(([k]) => [k, read(o.dir, k)]));
	const rows = [["measure", "goal", ...COLS.map((c) => c[1])]];
	rows.push(["load: people (s, count, rate)", "", ...COLS.map(([k]) => loadCell(res[k], "people"))]);
	rows.push(["load: KNOWS edges (s, count, rate)", "", ...COLS.map(([k]) => loadCell(res[k], "edges"))]);
	rows.push(["HTTP round trip floor (GET /health)", "", res["lora-http"].httpFloorMs !== undefined ?
		ms(res["lora-http"].httpFloorMs) : "-", "", "", ""]);
	const marks = [];
	for (const [kind, label, goal] of QUERIES)
		rows.push([`${label} (median ms)`, `<= ${goal}`,
			...COLS.map(([k]) => cell(res[k], kind, goal, marks))]);
	rows.push(["RSS after load, MiB (per process)", "<= 300",
		...COLS.map(([k]) => rssCell(res[k], "rssAfterLoad"))]);
	rows.push(["RSS after queries, MiB (per process)", "<= 300",
		...COLS.map(([k]) => rssCell(res[k], "rssAfterQueries"))]);
	rows.push(["peak RSS (VmHWM), MiB", "",
		...COLS.map(([k]) => {
			const p = res[k].peak || res[k].rssAfterQueries;
			return res[k].skipped || !p ? "-" : p.map((x) => mib(x.hwm)).join(" / ");
		})]);
	const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
	const line = (r) => "| " + r.map((c, i) => String(c).padEnd(w[i])).join(" | ") + " |";
	console.log(line(rows[0]));
	console.log("|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|");
	for (const r of rows.slice(1)) console.log(line(r));
	console.log("\n* misses the goal. n/a: not supported by that system. WRONG: no form tried answered " +
		"correctly, at least one answered wrongly. no answer: every form failed or ran out of time.");
	console.log("LoraDB-C (HTTP) RSS is node 1 / node 2 / node 3; lora-node and kuzu are the one process running them.");
	for (const [k, label] of COLS) {
		if (res[k].skipped) console.log(`${label}: not run: ${res[k].skipped}`);
		if (res[k].abandoned)
			console.log(`${label}: stopped at ${res[k].abandoned.kind}: ${res[k].abandoned.notes.join("; ")}`);
		if (res[k].restarts)
			console.log(`${label}: restarted ${res[k].restarts} time(s) after a query form was given up`);
	}
	marks.forEach(([sys, kind, q], i) =>
		console.log(`[${i + 1}] ${sys} ${kind}: ${q.notes.join("; ")}; used: ${q.form || "none"}`));
	console.log("\nQuery forms used:");
	let wrong = 0;
	for (const [k, label] of COLS) {
		if (res[k].skipped || !res[k].queries) continue;
		for (const [kind] of QUERIES) {
			const q = res[k].queries[kind];
			if (!q) continue;
			if (q.wrong) wrong++;
			console.log(`  ${label}, ${kind}: ${q.form || (q.unsupported ? "n/a" : "NONE CORRECT")}` +
				(q.runs ? ` (${q.runs} runs, min ${ms(q.min)}, max ${ms(q.max)})` : "") +
				(q.wrong ? `  <-- ${q.notes.join("; ")}` : ""));
		}
	}
	if (res.inprocess.note) console.log(`\nin-process: ${res.inprocess.note}`);
	if (wrong) {
		console.log(`\nFAIL: ${wrong} query result(s) answered wrongly in every form (see above)`);
		process.exit(1);
	}
}

main();
