/**
 * Entry of `npm test`. Tests run on a stack of their own — a fresh cluster under .stack/test (under
 * /var/tmp/queue-health/ when the postgres OS user cannot reach the checkout: state_dir.ts) on
 * ports 54330 (database), 54331 (functions) and 54334 (receivers), recreated on every run — so a
 * run always starts from the migrations alone, a second run behaves like the first, and the
 * development stack of `npm start` (54322/54321) is left alone. With DATABASE_URL set, the tests
 * use that database instead (and nothing is wiped). The example tests (SvelteKit, plain HTML)
 * serve the examples on QH_EXAMPLE_PORT (the functions port + 4: 54335), whose origin the stack's Realtime stand-in is
 * told to admit (QH_REALTIME_ALLOWED_ORIGINS). Every QH_* variable can still be overridden.
 */
import { defaultStateDir } from '../stack/state_dir.ts';

const defaults: Record<string, string> = {
  QH_STATE_DIR: defaultStateDir(new URL('../..', import.meta.url).pathname, '.stack/test'),
  QH_DB_PORT: '54330',
  QH_API_PORT: '54331',
  QH_RECEIVERS_PORT: '54334',
};
for (const [k, v] of Object.entries(defaults)) {
  if (!Deno.env.get(k)) Deno.env.set(k, v);
}
// The examples are served on their own port (another origin) and join the stack's Realtime
// stand-in, which refuses other origins unless they are listed (local/test/*_example_test.ts).
if (!Deno.env.get('QH_EXAMPLE_PORT')) {
  Deno.env.set('QH_EXAMPLE_PORT', String(Number(Deno.env.get('QH_API_PORT')) + 4));
}
if (!Deno.env.get('QH_REALTIME_ALLOWED_ORIGINS')) {
  Deno.env.set(
    'QH_REALTIME_ALLOWED_ORIGINS',
    `http://127.0.0.1:${Deno.env.get('QH_EXAMPLE_PORT')}`,
  );
}
// The stack modules read their settings when first imported: import them only now.
await import('./run.ts');
