// Copies the built <queue-health-dashboard> (its ES module and stylesheet, from the repository's
// dashboard/dist/, which `npm start` / `npm test` / `deno task dashboard:build` produce) into
// src/lib/queue-health/, where an app of your own would keep the two files.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';

const from = new URL('../../../dashboard/dist/', import.meta.url);
const to = new URL('../src/lib/queue-health/', import.meta.url);
const files = ['queue-health-dashboard.js', 'queue-health-dashboard.css'];
for (const f of files) {
  if (!existsSync(new URL(f, from))) {
    console.error(`${new URL(f, from).pathname} is missing: run 'deno task dashboard:build' first`);
    process.exit(1);
  }
}
mkdirSync(to, { recursive: true });
for (const f of files) copyFileSync(new URL(f, from), new URL(f, to));
