// inprocess.js - runs build/release/tests/bench/bench_query (the query
// engine in-process, no HTTP, no Raft) at the benchmark's number of people
// and turns its medians into WORK/inprocess.json for table.js.
//
// usage: node inprocess.js --bin BENCH_QUERY --people N --edges E --seed S --out FILE
// bench_query builds its own graph (same shape: 50 cities, 128-d vectors,
// a range index on id and a cosine vector index, but its own random numbers
// and always 10*N edges) straight through sto_apply, so its answers are
// not checked here and its load time is not a Cypher load. Peak RSS comes
// from GNU time when /usr/bin/time is there.
"use strict";
const fs = require("fs");
const { execFileSync } = require("child_process");
const { args } = require("./common");

const NAMES = {
	"point lookup (index)": "point",
	"2-hop friends-of-friends": "twoHop",
	"count by city (all people)": "city",
	"shortestPath": "shortest",
	"vector top-10": "cosine",
};
const FORMS = {
	point: "MATCH (p:Person {id: $a}) RETURN p.name",
	twoHop: "MATCH (p:Person {id: $a})-[:KNOWS]->()-[:KNOWS]->(f) RETURN count(DISTINCT f)",
	city: "MATCH (p:Person) RETURN p.city, count(*)",
	shortest: "MATCH (a {id:$a}), (b {id:$b}) MATCH p = shortestPath((a)-[:KNOWS*..6]-(b))",
	cosine: "CALL db.index.vector.queryNodes('person_vec', 10, $q) YIELD node, score",
};

function main() {
	const o = args(process.argv.slice(2), {});
	const people = +o.people, edges = +o.edges;
	const seed = String(+o.seed || 88172645463325252n); // xorshift: never 0
	const argv = [o.bin, String(people), seed];
	const timed = fs.existsSync("/usr/bin/time");
	const tf = `${o.out}.time`;
	const text = execFileSync(timed ? "/usr/bin/time" : argv[0],
		timed ? ["-f", "%M", "-o", tf, ...argv] : argv.slice(1),
		{ encoding: "utf8", maxBuffer: 1 << 24 });
	fs.writeFileSync(`${o.out}.log`, text);
	const out = { system: "inprocess", queries: {}, notes: [] };
	for (const line of text.split("\n")) {
		const m = line.match(/^(.*?)\s+median\s+([\d.]+) ms\s+\(min ([\d.]+), max ([\d.]+), (\d+) runs\)/);
		if (m && NAMES[m[1].trim()]) {
			const k = NAMES[m[1].trim()];
			out.queries[k] = { ms: +m[2], min: +m[3], max: +m[4], runs: +m[5], form: FORMS[k], notes: [] };
		}
		const l = line.match(/^load: ([\d.]+) s/);
		if (l) out.load = { people, edges: people * 10, peopleS: +l[1], edgesS: 0,
			peopleTotal: people, edgesTotal: people * 10, combined: true };
	}
	out.queries.cosineScan = { ms: null, unsupported: true, notes: ["bench_query has no such query"] };
	if (timed) out.peak = [{ hwm: +fs.readFileSync(tf, "utf8").trim().split("\n").pop() * 1024 }];
	out.note = `bench_query's own graph: ${people} people, ${people * 10} edges (10 per person` +
		(edges !== people * 10 ? `; this run's graph has ${edges}` : "") +
		"), its own random numbers, loaded with sto_apply; answers not checked; " +
		"peak RSS from GNU time";
	fs.writeFileSync(o.out, JSON.stringify(out, null, 1));
}

main();
