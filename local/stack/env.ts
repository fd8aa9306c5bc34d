/** The environment the local stack gives Edge Functions (as Supabase's edge runtime does). */
import { API_URL, databaseUrl, JWT_SECRET, paths, RECEIVERS_URL } from './config.ts';
import { localKeys } from './keys.ts';
import { loadSigningKey } from '../auth/signing_key.ts';

/**
 * Environment variables for functions served by the local stack. As on a hosted project with
 * asymmetric signing keys, `SUPABASE_JWKS` holds the public key of the local Auth stand-in
 * (local/auth), whose user tokens are ES256; `SUPABASE_URL` also points the functions at its
 * `/auth/v1/.well-known/jwks.json`. `SUPABASE_JWT_SECRET` verifies the HS256 anon / service-role
 * keys and the tokens local/stack/keys.ts mints. As hosted injects them (and the Supabase CLI's
 * edge runtime does locally), `SUPABASE_PUBLISHABLE_KEYS` / `SUPABASE_SECRET_KEYS` are JSON objects
 * of key name → key with the one key named `default`: `{"default":"sb_publishable_…"}`.
 */
export async function functionEnv(): Promise<Record<string, string>> {
  const keys = await localKeys();
  const signingKey = await loadSigningKey(paths.authSigningKey);
  return {
    SUPABASE_URL: API_URL,
    SUPABASE_DB_URL: databaseUrl(),
    SUPABASE_ANON_KEY: keys.anon,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: keys.publishable }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: keys.secret }),
    SUPABASE_JWT_SECRET: JWT_SECRET,
    SUPABASE_JWKS: JSON.stringify(signingKey.jwks),
    RESEND_API_KEY: Deno.env.get('RESEND_API_KEY') ?? 're_local_test',
    RESEND_BASE_URL: Deno.env.get('RESEND_BASE_URL') ?? `${RECEIVERS_URL}/resend`,
    RESEND_FROM: Deno.env.get('RESEND_FROM') ?? 'Queue Health <alerts@queue-health.local>',
    // The local Twilio and PagerDuty stand-ins (local/receivers/oncall.ts).
    TWILIO_API_BASE_URL: Deno.env.get('TWILIO_API_BASE_URL') ?? `${RECEIVERS_URL}/twilio`,
    PAGERDUTY_EVENTS_URL: Deno.env.get('PAGERDUTY_EVENTS_URL') ??
      `${RECEIVERS_URL}/pagerduty/v2/enqueue`,
    QUEUE_HEALTH_DASHBOARD_URL: `${API_URL}/`,
    // The local receivers (Slack, webhooks) listen on loopback over http: allowed here only.
    QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
    QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
  };
}
