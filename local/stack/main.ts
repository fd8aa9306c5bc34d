/**
 * `npm run stack -- up|down|status|reset` and `npm start` (up + the demo workload).
 */
import { log, StackError } from './log.ts';
import { down, reset, status, up } from './stack.ts';

async function main(args: string[]): Promise<number> {
  const cmd = args[0] ?? 'status';
  switch (cmd) {
    case 'up':
      await up();
      await status();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status':
      return (await status()) ? 0 : 1;
    case 'reset':
      await reset();
      await status();
      return 0;
    case 'start': {
      const { runStart } = await import('./demo.ts');
      return await runStart();
    }
    default:
      console.error(`usage: npm run stack -- up|down|status|reset   (got '${cmd}')`);
      return 2;
  }
}

try {
  Deno.exit(await main(Deno.args));
} catch (e) {
  if (e instanceof StackError) {
    log.fail(e.message);
  } else {
    log.fail(`unexpected error: ${e instanceof Error ? e.stack : String(e)}`);
  }
  Deno.exit(1);
}
