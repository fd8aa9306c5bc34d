// @ts-check
/**
 * The element's shadow-DOM markup: static structure only. Everything that comes from the
 * database is put in later with `textContent` (dom.js), never as HTML.
 * @module
 */

/** The element's markup; ids are unique within its shadow root, not the page. */
export const TEMPLATE = `
<div class="qh" part="root">
  <header class="topbar" part="topbar">
    <div class="brand">
      <span class="logo" aria-hidden="true"></span>
      <h1>Queue Health</h1>
    </div>
    <div class="topbar-right" id="session-bar" hidden>
      <label class="project-picker" hidden>
        <span class="visually-hidden">Project</span>
        <select id="project-select" aria-label="Project"></select>
      </label>
      <span id="mode" class="mode" data-mode="connecting" title="How the page gets updates">
        <span class="dot" aria-hidden="true"></span><span id="mode-text">connecting…</span>
      </span>
      <button id="sign-out" class="link-button" type="button">Sign out</button>
    </div>
  </header>

  <div class="main">
    <section id="sign-in" class="card sign-in" hidden>
      <h2>Sign in</h2>
      <p class="muted" id="sign-in-target"></p>
      <form id="password-form" hidden>
        <label>Email <input id="email" type="email" autocomplete="username" required></label>
        <label>Password
          <input id="password" type="password" autocomplete="current-password" required></label>
        <button type="submit" class="primary">Sign in</button>
      </form>
      <details id="token-details">
        <summary>Use an access token</summary>
        <form id="token-form">
          <label>Access token (a Supabase user JWT)
            <textarea id="token" rows="4" spellcheck="false" autocomplete="off" required
              placeholder="eyJhbGciOi…"></textarea></label>
          <p class="muted small">
            On the local stack, <code>npm start</code> prints one for the demo user. The token
            is kept in this browser's local storage until you sign out.
          </p>
          <button type="submit" class="primary">Use token</button>
        </form>
      </details>
      <p id="sign-in-error" class="error" role="alert" hidden></p>
    </section>

    <section id="config-error" class="card" role="alert" hidden>
      <h2 id="config-error-title">Not configured</h2>
      <p id="config-error-text" class="error"></p>
      <p id="config-error-hint" class="muted">Give the element <code>functions-url</code> (or
        <code>supabase-url</code>) and a session, a Supabase client or an <code>access-token</code>:
        see docs/dashboard.md.</p>
      <p id="token-error-hint" class="muted" hidden>The page this dashboard is on gave it that
        token; it must give a valid one (the <code>access-token</code> attribute, or the
        <code>accessToken</code> or <code>session</code> property).</p>
    </section>

    <section id="dashboard" hidden>
      <div class="overview">
        <div id="overall" class="overall" data-status="unknown" aria-live="polite">
          <span class="overall-label">Status</span>
          <strong id="overall-status">–</strong>
          <span id="overall-summary" class="muted"></span>
        </div>
        <dl class="facts">
          <div><dt>Last capture</dt><dd id="fact-capture" data-ts="">–</dd></div>
          <div><dt>Monitor</dt><dd id="fact-monitor">–</dd></div>
          <div><dt>Updated</dt><dd id="fact-updated" data-ts="">–</dd></div>
        </dl>
      </div>
      <p id="banner" class="banner" role="status" hidden></p>

      <section class="card">
        <div class="card-head">
          <h2>Queues</h2>
          <span id="queue-count" class="muted"></span>
        </div>
        <div class="table-wrap">
          <table id="queues" class="queues">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Queue</th>
                <th scope="col" class="num">Depth</th>
                <th scope="col" class="num">Oldest ready</th>
                <th scope="col" class="num"
                  title="How long until nothing is ready, at the current rates">Clears in</th>
                <th scope="col" class="num">In</th>
                <th scope="col" class="num">Out</th>
                <th scope="col" class="num">Errors</th>
                <th scope="col" class="num"
                  title="Messages taken again and again that are still queued">Poison</th>
                <th scope="col">Depth, last 30 min</th>
              </tr>
            </thead>
            <tbody id="queue-rows"></tbody>
          </table>
        </div>
        <p id="no-queues" class="muted empty" hidden>
          No queues yet. Queue Health lists pgmq and pg-boss queues after the first capture.
        </p>
      </section>

      <section id="detail" class="card detail" hidden aria-live="polite">
        <div class="card-head">
          <h2><span id="detail-status" class="badge" data-status="ok"></span>
            <span id="detail-title"></span></h2>
          <div class="range-tabs" role="tablist" aria-label="Chart range">
            <button type="button" role="tab" data-range="1h" aria-selected="true">1 h</button>
            <button type="button" role="tab" data-range="24h" aria-selected="false">24 h</button>
            <button type="button" role="tab" data-range="7d" aria-selected="false">7 d</button>
          </div>
          <button id="detail-close" class="link-button" type="button" aria-label="Close">✕</button>
        </div>
        <ul id="detail-reasons" class="reasons"></ul>
        <dl id="detail-metrics" class="metrics"></dl>
        <div id="detail-slo" class="slo" hidden>
          <div>
            <span class="muted small">Error budget</span>
            <strong id="detail-budget" data-status="ok">–</strong>
          </div>
          <div>
            <span id="detail-objective"></span>
            <span class="muted small">Burn rate: <span id="detail-burn"></span></span>
          </div>
        </div>
        <p id="detail-chart-note" class="muted small"></p>
        <div class="charts">
          <figure>
            <figcaption>Depth (jobs)</figcaption>
            <div id="chart-depth" class="chart"></div>
          </figure>
          <figure>
            <figcaption>Oldest ready (seconds)</figcaption>
            <div id="chart-age" class="chart"></div>
          </figure>
          <figure>
            <figcaption>Throughput (jobs per second)</figcaption>
            <div id="chart-rate" class="chart"></div>
          </figure>
          <figure id="chart-burn-figure" hidden>
            <figcaption>Objective burn rate (1× spends the budget over its period)</figcaption>
            <div id="chart-burn" class="chart"></div>
          </figure>
        </div>
      </section>

      <div class="two-col">
        <section class="card">
          <div class="card-head">
            <h2>Firing alerts</h2><span id="alert-count" class="muted"></span>
          </div>
          <ul id="alerts" class="alerts"></ul>
        </section>
        <section class="card">
          <div class="card-head"><h2>Alert channels</h2></div>
          <ul id="channels" class="channels"></ul>
        </section>
      </div>
    </section>
  </div>
</div>
`;
