// vecdata.js - the vectors of the vector benchmarks (vector.js against
// LoraDB-C, vector_kuzu.js against Kùzu): one generator, so both load the
// same data and ask the same queries.
"use strict";
const C = require("./common");

// makeVectors(seed, data, dims)() draws the next vector: clustered data
// sits around one of 100 centres (sd 0.1 per coordinate around centres
// uniform in [-1, 1), rounded to float32); random is uniform in [-1, 1).
// The benchmarks draw the n data vectors first, then the query vectors
// from the same generator (same centres, later draws).
function makeVectors(seed, data, dims) {
	const r = C.rng(seed);
	const u = () => r() / 4294967296;
	const centres = [];
	for (let c = 0; c < 100; c++)
		centres.push(Array.from({ length: dims }, () => 2 * u() - 1));
	const gauss = () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
	return () => {
		if (data === "random") return Array.from({ length: dims }, () => 2 * u() - 1);
		const c = centres[Math.floor(u() * 100)];
		return c.map((x) => Math.fround(x + 0.1 * gauss()));
	};
}

module.exports = { makeVectors };
