/**
 * supabase-js against the running stack, as the stack tests use it: a client that keeps no
 * session, and joining the private Realtime channel of a project.
 * @module
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { API_URL } from '../stack/config.ts';

/** A supabase-js client of the stack with `key`, keeping and refreshing no session. */
export function stackClient(key: string): SupabaseClient {
  return createClient(API_URL, key, { auth: { persistSession: false, autoRefreshToken: false } });
}

/**
 * Joins the private channel queue_health:<project> and leaves it again; resolves to the final
 * status (SUBSCRIBED, CHANNEL_ERROR, or TIMED_OUT after `timeoutMs`).
 */
export function joinPrivate(
  sb: SupabaseClient,
  project: string,
  timeoutMs: number,
): Promise<string> {
  const channel = sb.channel(`queue_health:${project}`, { config: { private: true } });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('TIMED_OUT'), timeoutMs);
    channel.subscribe((status) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        clearTimeout(timer);
        sb.removeChannel(channel).finally(() => resolve(status));
      }
    });
  });
}
