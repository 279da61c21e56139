// gen.js - writes the scale benchmark's graph, deterministically from a seed:
//   people.csv  id,name,age,city,emb   (emb: 128 floats separated by ';')
//   knows.csv   src,dst                (random people, never src == dst)
//   meta.json   sizes and seed
// The same seed and sizes give byte-identical files.
//
// usage: node gen.js --out DIR [--people N] [--edges E] [--seed S]
"use strict";
const fs = require("fs");
const path = require("path");
const { DIMS, CITIES, rng, coord, args } = require("./common");

function writer(file) {
	const fd = fs.openSync(file, "w");
	let chunks = [], bytes = 0;
	const flush = () => {
		if (chunks.length) fs.writeSync(fd, chunks.join(""));
		chunks = [];
		bytes = 0;
	};
	return {
		line(s) {
			chunks.push(s, "\n");
			bytes += s.length + 1;
			if (bytes > 1 << 20) flush();
		},
		close() { flush(); fs.closeSync(fd); },
	};
}

function main() {
	const o = args(process.argv.slice(2), { people: 100000, edges: 1000000, seed: 42 });
	const people = +o.people, edges = +o.edges, seed = +o.seed >>> 0;
	if (!o.out || !(people > 1) || !(edges >= 0)) {
		console.error("usage: node gen.js --out DIR [--people N>1] [--edges E] [--seed S]");
		process.exit(2);
	}
	fs.mkdirSync(o.out, { recursive: true });
	const r = rng(seed);
	const p = writer(path.join(o.out, "people.csv"));
	p.line("id,name,age,city,emb");
	const emb = new Array(DIMS);
	for (let i = 0; i < people; i++) {
		const age = 18 + (r() % 60);
		const city = `city${r() % CITIES}`;
		for (let k = 0; k < DIMS; k++) emb[k] = coord(r).toFixed(4);
		p.line(`${i},p${i},${age},${city},${emb.join(";")}`);
	}
	p.close();
	const k = writer(path.join(o.out, "knows.csv"));
	k.line("src,dst");
	for (let e = 0; e < edges; e++) {
		const a = r() % people;
		let b = r() % people;
		while (b === a) b = r() % people;
		k.line(`${a},${b}`);
	}
	k.close();
	fs.writeFileSync(path.join(o.out, "meta.json"),
		JSON.stringify({ people, edges, seed, dims: DIMS, cities: CITIES }) + "\n");
}

main();
