// httpc.js - a minimal keep-alive HTTP/1.1 client over one TCP socket, for
// timing LoraDB-C's HTTP API with as little client overhead as possible
// (node's http module adds tens of microseconds per request). One request
// at a time; responses must carry Content-Length (lorad's always do).
"use strict";
const net = require("net");

// Basic credentials from LORA_USER / LORA_PASSWORD (deploy/lib.sh exports
// them), as one header line, or nothing.
const AUTH = process.env.LORA_USER
	? "Authorization: Basic " + Buffer.from(
		`${process.env.LORA_USER}:${process.env.LORA_PASSWORD || ""}`).toString("base64") + "\r\n"
	: "";

class Conn {
	constructor(hostport) {
		const [host, port] = hostport.split(":");
		this.host = hostport;
		this.sock = net.createConnection({ host, port: +port });
		this.sock.setNoDelay(true);
		this.buf = Buffer.alloc(0);
		this.waiting = null;
		this.sock.on("data", (d) => {
			this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
			this.parse();
		});
		const fail = (e) => {
			const w = this.waiting;
			this.waiting = null;
			this.dead = e || new Error("connection closed");
			if (w) w.reject(this.dead);
		};
		this.sock.on("error", fail);
		this.sock.on("close", () => fail(null));
		this.ready = new Promise((res, rej) => {
			this.sock.once("connect", res);
			this.sock.once("error", rej);
		});
	}

	parse() {
		if (!this.waiting) return;
		const end = this.buf.indexOf("\r\n\r\n");
		if (end < 0) return;
		const head = this.buf.toString("latin1", 0, end);
		let body, rest;
		if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
			// a streamed answer (a read slower than the server's flush
			// interval): size line, data, CRLF, ... until size 0
			const parts = [];
			let p = end + 4;
			for (;;) {
				const eol = this.buf.indexOf("\r\n", p);
				if (eol < 0) return;
				const size = parseInt(this.buf.toString("latin1", p, eol), 16);
				if (this.buf.length < eol + 2 + size + 2) return;
				if (size === 0) { rest = eol + 4; break; }
				parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
				p = eol + 2 + size + 2;
			}
			body = Buffer.concat(parts).toString("utf8");
		} else {
			const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
			const len = m ? +m[1] : 0;
			if (this.buf.length < end + 4 + len) return;
			body = this.buf.toString("utf8", end + 4, end + 4 + len);
			rest = end + 4 + len;
		}
		this.buf = this.buf.subarray(rest);
		const w = this.waiting;
		this.waiting = null;
		w.resolve({ status: +head.split(" ")[1], body, t: process.hrtime.bigint() });
	}

	// request(method, path, body) -> {status, body, ms}; ms is the time from
	// handing the bytes to the socket to the last byte of the answer.
	request(method, path, body = "") {
		if (this.dead) return Promise.reject(this.dead);
		const b = Buffer.from(body, "utf8");
		const req = Buffer.concat([Buffer.from(
			`${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\n` +
			`Content-Type: application/json\r\nContent-Length: ${b.length}\r\n` +
			AUTH + "\r\n",
			"latin1"), b]);
		return new Promise((resolve, reject) => {
			const t0 = process.hrtime.bigint();
			this.waiting = {
				resolve: (r) => resolve({ status: r.status, body: r.body,
					ms: Number(r.t - t0) / 1e6 }),
				reject,
			};
			this.sock.write(req);
		});
	}

	close() { this.sock.destroy(); }
}

module.exports = { Conn };
