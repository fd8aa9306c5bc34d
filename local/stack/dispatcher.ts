/**
 * The local stand-in for pg_net: on NOTIFY queue_health_dispatch (sent by capture(), the sweep and
 * evaluate_alerts() after writing notifications), POST queue-alert — debounced by 50 ms, one call
 * at a time, and once more if woken meanwhile. Used by the local stack's functions server and by
 * the benchmark.
 */
import type postgres from 'postgres';

/** Where queue-alert is and how to call it, and what to tell about each call. */
export interface DispatcherOptions {
  /** Base URL of the functions, e.g. http://127.0.0.1:54321 (queue-alert is at /functions/v1/queue-alert). */
  functionsUrl: string;
  serviceRoleKey: string;
  /** Called with the HTTP status and the parsed JSON summary of each queue-alert run. */
  onRun?: (status: number, summary: unknown) => void;
  /** Called when queue-alert could not be reached (the next wake-up retries). */
  onError?: (error: unknown) => void;
}

/** Starts listening; resolves to a function that stops it (and waits for a call in flight). */
export async function startDispatcher(
  listener: postgres.Sql,
  opts: DispatcherOptions,
): Promise<() => Promise<void>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  const invoke = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        const res = await fetch(`${opts.functionsUrl}/functions/v1/queue-alert`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${opts.serviceRoleKey}`,
            'content-type': 'application/json',
          },
          body: '{}',
        });
        opts.onRun?.(res.status, await res.json().catch(() => null));
      } catch (e) {
        opts.onError?.(e);
      } finally {
        running = null;
        if (again) {
          again = false;
          schedule();
        }
      }
    })();
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(invoke, 50);
  };
  const sub = await listener.listen('queue_health_dispatch', () => schedule());
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await sub.unlisten();
    await running;
  };
}
