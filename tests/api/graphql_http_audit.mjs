// The graphql-http conformance audit (GraphQL over HTTP spec) against a live server.
// Usage: node graphql_http_audit.mjs <url>   (run from the directory whose
// node_modules holds graphql-http, the project's root after `npm ci`)
// Prints one JSON line: {"total", "ok", "warn", "error", "failures": [{id, name, status,
// reason, body}]}.
// The audits module is loaded by path: the package's entry point also loads its
// server handler, which needs `graphql` (a peer dependency the audit does not use).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const { auditServer } = require(
  path.join(process.cwd(), "node_modules", "graphql-http", "lib", "audits", "index.js"),
);

const url = process.argv[2];
const results = await auditServer({ url });
const count = (status) => results.filter((r) => r.status === status).length;
const failures = [];
for (const r of results) {
  if (r.status !== "ok") {
    let body = null;
    try {
      body = r.response ? await r.response.text() : null;
    } catch {}
    failures.push({ id: r.id, name: r.name, status: r.status, reason: r.reason, body });
  }
}
console.log(
  JSON.stringify({
    total: results.length,
    ok: count("ok"),
    warn: count("warn"),
    error: count("error"),
    failures,
  }),
);
