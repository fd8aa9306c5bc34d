import { createClient } from '@supabase/supabase-js';

/**
 * The app's one supabase-js client. Its project URL and anon (publishable) key come from
 * /config.json (static/config.json, or the test's), so one build serves any project.
 * @returns {Promise<{client: import('@supabase/supabase-js').SupabaseClient, functionsUrl: string}>}
 */
export async function appSupabase() {
  const res = await fetch('/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`/config.json: HTTP ${res.status} (copy static/config.example.json)`);
  const { supabaseUrl, anonKey, functionsUrl } = await res.json();
  return {
    client: createClient(supabaseUrl, anonKey),
    functionsUrl: functionsUrl ?? `${supabaseUrl}/functions/v1`,
  };
}
