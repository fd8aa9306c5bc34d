/**
 * The demo user that `npm start` seeds (demo.ts): its sign-in at the local Auth stand-in and its
 * id. Kept apart from demo.ts so that `npm run stack -- status` prints them without loading the
 * demo workload.
 * @module
 */

/** The demo user's email. */
export const DEMO_USER_EMAIL = 'demo@queue-health.local';
/**
 * The demo user's password at the local Auth stand-in (local/auth): printed by `npm start` and
 * `npm run stack -- status`. A local-only demo account on 127.0.0.1, not a secret.
 */
export const DEMO_USER_PASSWORD = 'queue-health-demo';
/** The demo user's id: auth.users.id, and user_id of its queue_health.project_member row. */
export const DEMO_USER_ID = '00000000-0000-4000-8000-00000000d3e0';
