// to_import_csv.js - rewrites the generated people.csv / knows.csv with the
// headers lora-import reads (neo4j-admin style, as on the import branch):
//   people.csv  id:ID,name,age:int,city,emb:vector(128)   emb as "[a,b,...]"
//   knows.csv   :START_ID,:END_ID
// Same rows, same order, same values; only the header and the vector
// syntax change.
//
// usage: node to_import_csv.js --dir DATA --out DIR
"use strict";
const fs = require("fs");
const path = require("path");
const { DIMS, eachPerson, eachEdge, readMeta, args } = require("./common");

function writer(file) {
	const fd = fs.openSync(file, "w");
	let parts = [], n = 0;
	const flush = () => { fs.writeSync(fd, parts.join("")); parts = []; n = 0; };
	return {
		line(s) { parts.push(s, "\n"); if (++n >= 4096) flush(); },
		close() { flush(); fs.closeSync(fd); },
	};
}

const o = args(process.argv.slice(2), {});
fs.mkdirSync(o.out, { recursive: true });
const meta = readMeta(o.dir);
const p = writer(path.join(o.out, "people.csv"));
p.line(`id:ID,name,age:int,city,emb:vector(${DIMS})`);
eachPerson(o.dir, (r) => { p.line(`${r.id},${r.name},${r.age},${r.city},"[${r.emb.join(",")}]"`); });
p.close();
const k = writer(path.join(o.out, "knows.csv"));
k.line(":START_ID,:END_ID");
eachEdge(o.dir, meta.edges, (a, b) => { k.line(`${a},${b}`); });
k.close();
