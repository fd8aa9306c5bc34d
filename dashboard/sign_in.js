// @ts-check
/// <reference lib="dom" />
/**
 * Who the element acts for, and the sign-in card. In order of precedence:
 *
 * 1. a token the host gives (`access-token` attribute, `accessToken` or `session` property);
 * 2. the session of a supabase-js client: the host's (`supabase` property) or one the element
 *    creates from `supabase-url` + `anon-key` with supabase-js (the host's global `supabase`, or the
 *    UMD bundle at `supabase-js`), kept and refreshed by supabase-js; the email/password form signs
 *    in through it (`signInWithPassword`) when Supabase Auth answers (`/auth/v1/health`);
 * 3. an access token pasted into the form, kept in localStorage until sign-out or expiry.
 * @module
 */
import { loadScript } from './api.js';
import { jwtSecondsLeft } from './format.js';

/** Where a pasted token is kept. */
export const TOKEN_KEY = 'queue-health.token';
/** supabase-js's storage key for the session of a client the element creates. */
export const AUTH_STORAGE_KEY = 'queue-health.auth';

/**
 * @typedef {object} SignInOptions
 * @property {() => import('./config.js').DashboardConfig} config
 * @property {(id: string) => HTMLElement} $ an element of the shadow root by id
 * @property {() => any} injectedClient the host's supabase-js client, or null
 * @property {() => string | null} givenToken the host's token (attribute, property or session)
 * @property {() => string} givenWho who the host's token is for ('' when unknown)
 * @property {() => string} supabaseJsSrc URL of supabase-js's UMD bundle ('' = none)
 * @property {(who: string) => void} onSignedIn
 * @property {(message: string) => void} onSignedOut
 */

/** The sign-in state and card of one element. */
export class SignIn {
  /** @param {SignInOptions} o */
  constructor(o) {
    this.o = o;
    /** @type {string | null} */
    this.token = null;
    /** 'given' by the host, 'supabase' from a supabase-js session, 'token' when pasted. */
    this.kind = /** @type {'given' | 'supabase' | 'token' | null} */ (null);
    /** @type {Promise<any> | null} the client the element created (not the host's) */
    this.own = null;
    /** @type {{unsubscribe(): void} | null} */
    this.listener = null;
    this.bindForms();
  }

  /** The current access token (the host's wins, so a refreshed one is used at once). */
  currentToken() {
    return this.o.givenToken() ?? this.token;
  }

  /**
   * The supabase-js client for Auth and Realtime: the host's, else one made here (needs
   * `supabase-url`, `anon-key` and supabase-js); null when there is none to be had.
   * @returns {Promise<any>}
   */
  client() {
    const injected = this.o.injectedClient();
    if (injected) return Promise.resolve(injected);
    const cfg = this.o.config();
    if (!cfg.anonKey) return Promise.resolve(null);
    if (!this.own) {
      const g = /** @type {any} */ (globalThis);
      const src = this.o.supabaseJsSrc();
      const ready = g.supabase?.createClient || !src ? Promise.resolve() : loadScript(src);
      this.own = ready.then(() => {
        const lib = g.supabase;
        if (!lib?.createClient) {
          throw new Error('supabase-js is not loaded: set the supabase-js attribute or property');
        }
        return lib.createClient(cfg.supabaseUrl, cfg.anonKey, {
          auth: { persistSession: true, autoRefreshToken: true, storageKey: AUTH_STORAGE_KEY },
        });
      });
      this.own.catch(() => (this.own = null));
    }
    return this.own;
  }

  /** True when a client can sign in: the host's, or Supabase Auth answers (or is configured). */
  async authAvailable() {
    if (this.o.injectedClient()) return true;
    const cfg = this.o.config();
    if (cfg.auth !== null) return cfg.auth && Boolean(cfg.anonKey);
    if (!cfg.anonKey) return false;
    try {
      const res = await fetch(`${cfg.supabaseUrl}/auth/v1/health`, {
        headers: { apikey: cfg.anonKey },
        signal: AbortSignal.timeout(3000),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Finds a token (see the module doc) and signs in with it, else shows the sign-in card. */
  async begin() {
    if (this.o.givenToken()) {
      this.kind = 'given';
      return this.o.onSignedIn(this.o.givenWho());
    }
    const available = await this.authAvailable();
    if (available) {
      try {
        const sb = await this.client();
        if (sb) {
          const { data } = await sb.auth.getSession();
          this.listen(sb);
          if (data?.session?.access_token) {
            this.kind = 'supabase';
            this.token = data.session.access_token;
            return this.o.onSignedIn(data.session.user?.email ?? '');
          }
        }
      } catch (e) {
        return this.show(false, `Supabase Auth unavailable: ${e instanceof Error ? e.message : e}`);
      }
    }
    const saved = localStorage.getItem(TOKEN_KEY);
    if (saved && (jwtSecondsLeft(saved) ?? 1) > 0) {
      this.kind = 'token';
      this.token = saved;
      return this.o.onSignedIn('');
    }
    if (saved) localStorage.removeItem(TOKEN_KEY);
    this.show(available, saved ? 'The saved access token has expired: paste a new one.' : '');
  }

  /** Follows the client's session: a refreshed token goes to Realtime; sign-out signs out here. */
  listen(/** @type {any} */ sb) {
    if (this.listener) return;
    const { data } = sb.auth.onAuthStateChange((
      /** @type {string} */ _event,
      /** @type {any} */ session,
    ) => {
      if (this.kind !== 'supabase') return;
      if (session?.access_token) {
        this.token = session.access_token;
        sb.realtime.setAuth(session.access_token);
      } else {
        this.forget();
        this.o.onSignedOut('Signed out.');
      }
    });
    this.listener = data?.subscription ?? null;
  }

  /** Signs out: of supabase-js when signed in through it; a pasted token is forgotten. */
  async signOut() {
    if (this.kind === 'supabase') {
      try {
        await (await this.client())?.auth.signOut();
      } catch {
        // signed out here either way
      }
    }
    this.forget();
  }

  /** Forgets the token (not the host's). */
  forget() {
    if (this.kind === 'token') localStorage.removeItem(TOKEN_KEY);
    this.token = null;
    this.kind = null;
  }

  /** Stops following the client (the element is removed or reconfigured). */
  dispose() {
    this.listener?.unsubscribe();
    this.listener = null;
    this.own = null;
    this.token = null;
    this.kind = null;
  }

  /**
   * Shows the sign-in card.
   * @param {boolean} passwordAvailable
   * @param {string} message
   */
  show(passwordAvailable, message) {
    const { $ } = this.o;
    const cfg = this.o.config();
    $('sign-in').hidden = false;
    $('password-form').hidden = !passwordAvailable;
    /** @type {HTMLDetailsElement} */ ($('token-details')).open = !passwordAvailable;
    $('sign-in-target').textContent = passwordAvailable
      ? `Sign in to ${cfg.supabaseUrl} with your Supabase account, or use an access token.`
      : `${cfg.supabaseUrl} has no Supabase Auth here: paste an access token.`;
    const err = $('sign-in-error');
    err.textContent = message;
    err.hidden = !message;
  }

  /** @param {string} message */
  error(message) {
    const err = this.o.$('sign-in-error');
    err.textContent = message;
    err.hidden = false;
  }

  bindForms() {
    const { $ } = this.o;
    $('password-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const email = /** @type {HTMLInputElement} */ ($('email')).value.trim();
      const password = /** @type {HTMLInputElement} */ ($('password')).value;
      try {
        const sb = await this.client();
        if (!sb) return this.error('Sign-in failed: no Supabase client (anon key missing)');
        const { data, error } = await sb.auth.signInWithPassword({ email, password });
        if (error) return this.error(`Sign-in failed: ${error.message}`);
        this.listen(sb);
        this.kind = 'supabase';
        this.token = data.session.access_token;
        /** @type {HTMLInputElement} */ ($('password')).value = '';
        this.o.onSignedIn(email);
      } catch (e) {
        this.error(`Sign-in failed: ${e instanceof Error ? e.message : e}`);
      }
    });
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = /** @type {HTMLTextAreaElement} */ ($('token'));
      const token = input.value.trim().replace(/^Bearer\s+/i, '');
      const left = jwtSecondsLeft(token);
      if (token.split('.').length !== 3) {
        return this.error('That is not a JWT (three dot-separated parts).');
      }
      if (left !== null && left <= 0) return this.error('That token has expired.');
      localStorage.setItem(TOKEN_KEY, token);
      this.kind = 'token';
      this.token = token;
      input.value = '';
      this.o.onSignedIn('');
    });
  }
}
