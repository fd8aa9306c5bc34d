/**
 * Payloads for queue-alert tests, shaped as `queue_health.evaluate_alerts()` writes them, and a
 * loopback listener that records connections (SSRF tests).
 * @module
 */

/** One alert of the payload; override any field. */
export function alert(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    alert_id: '11',
    rule_id: '7',
    rule_name: 'queue backlog',
    condition: 'oldest_ready_age_s',
    severity: 'critical',
    state: 'firing',
    source: 'pgboss',
    source_schema: 'pgboss',
    queue: 'emails',
    value: 120,
    threshold: 60,
    started_at: '2026-11-26T10:00:00Z',
    fired_at: '2026-11-26T10:02:00Z',
    resolved_at: null,
    summary: 'emails: oldest ready job is 120 s old (threshold 60 s)',
    runbook_url: 'https://runbooks.example.com/queue-backlog',
    ...overrides,
  };
}

/** A notification payload (contract v1) holding `alerts`. */
export function payload(
  alerts: Record<string, unknown>[] = [alert()],
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const firing = alerts.filter((a) => a.state === 'firing').length;
  return {
    v: 1,
    notification_id: '00000000-0000-4000-8000-000000000001',
    project_id: 'acme',
    channel: { id: '00000000-0000-4000-8000-0000000000c1', name: 'ops', kind: 'slack' },
    status: firing > 0 ? 'firing' : 'resolved',
    severity: 'critical',
    counts: { firing, resolved: alerts.length - firing },
    alerts,
    dashboard_url: 'https://dash.example.com/acme',
    ...overrides,
  };
}

/**
 * A TCP listener on loopback that counts every connection (an HTTP request, a TLS hello, anything)
 * and answers each with `response`'s status line and headers, then closes it.
 */
export function loopbackListener(hostname: '127.0.0.1' | '::1', response = 'HTTP/1.1 200 OK\r\n') {
  const server = Deno.listen({ hostname, port: 0 });
  let connections = 0;
  const open = new Set<Deno.Conn>();
  const done = (async () => {
    for await (const conn of server) {
      connections++;
      open.add(conn);
      (async () => {
        try {
          await conn.read(new Uint8Array(65536));
          await conn.write(
            new TextEncoder().encode(
              `${response}content-length: 0\r\nconnection: close\r\n\r\n`,
            ),
          );
        } catch {
          // a TLS hello or a reset: counted all the same
        } finally {
          open.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      })();
    }
  })();
  return {
    port: server.addr.port,
    get connections() {
      return connections;
    },
    async close() {
      server.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await done.catch(() => {});
    },
  };
}
