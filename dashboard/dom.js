// @ts-check
/// <reference lib="dom" />
/**
 * Small DOM helpers shared by the views: elements built with text (never innerHTML: queue names
 * and alert texts are data) and relative times kept current by the element's ticker.
 * @module
 */
import { formatRelative } from './format.js';

/**
 * Creates an element with attributes and children (text nodes for strings).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null)[]} [children]
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null) e.append(c);
  return e;
}

/**
 * A `<time>` whose text is a relative time ("3 min ago"), kept current by {@link tickTimes}.
 * @param {string | null | undefined} iso
 * @param {string} [prefix]
 * @returns {HTMLElement}
 */
export function timeEl(iso, prefix = '') {
  const e = el('time', { 'data-ts': iso ?? '', 'data-prefix': prefix });
  if (iso) {
    e.setAttribute('datetime', iso);
    e.title = new Date(iso).toLocaleString();
  }
  e.textContent = prefix + formatRelative(iso);
  return e;
}

/**
 * Rewrites every relative time under `root` (elements with `data-ts`) whose text changed.
 * @param {ParentNode} root
 * @param {number} [now]
 */
export function tickTimes(root, now = Date.now()) {
  for (const e of root.querySelectorAll('[data-ts]')) {
    const ts = /** @type {HTMLElement} */ (e).dataset.ts;
    if (!ts) continue;
    const text = (/** @type {HTMLElement} */ (e).dataset.prefix ?? '') + formatRelative(ts, now);
    if (e.textContent !== text) e.textContent = text;
  }
}
