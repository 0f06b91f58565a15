// Server-rendered pages with no build step: a tagged template that escapes every value it is
// given (target names, error messages from model servers), unless the value is already markup.

import { UsageError } from './flags.ts';

const marked = Symbol('html');
export interface Html {
  readonly [marked]: true;
  readonly text: string;
}

const raw = (text: string): Html => ({ [marked]: true, text });

export function escape(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (typeof value === 'object' && marked in value) return value.text;
  return escape(value);
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  return raw(strings.reduce((out, s, i) => out + s + (i < values.length ? render(values[i]!) : ''), ''));
}

const style = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}.warn{color:#8a5a00;font-weight:600}.muted{color:#777;font-weight:normal}code{font-size:13px}
nav a.external::after{content:" ↗"}.updated{color:#777;margin:.3em 0 0}
.badge{display:inline-block;padding:0 .55em;border:1px solid;border-radius:.8em;font-size:12px;font-weight:600;white-space:nowrap}
.badge.idle{color:#1a7f37;background:#e6f4ea;border-color:#b7dfc2}.badge.starting{color:#0b5cad;background:#e3f0fc;border-color:#a9cdf2}
.badge.restarting{color:#8a5a00;background:#fff4d6;border-color:#f0d58a}.badge.cooldown{color:#555;background:#f1f1f1;border-color:#ccc}
.badge.circuit_open{color:#fff;background:#c62828;border-color:#c62828}
.command{display:flex;gap:.4em;align-items:center;margin:.3em 0}.command code{background:#f6f6f6;border:1px solid #ddd;padding:.1em .4em;user-select:all}`;

// The page's only script, a module (it runs once the page is parsed): reloads the page every few
// seconds, though not while text is selected (someone copying a command) nor while the tab is
// hidden; writes each [data-href] out as an absolute URL of the page's own origin; copies a command
// line to the clipboard. Without scripts, the <noscript> meta refresh reloads the page.
const script = `const reload = () => (document.hidden || String(getSelection()) ? setTimeout(reload, 2000) : location.reload());
const every = Number(document.documentElement.dataset.refresh) * 1000;
if (every > 0) setTimeout(reload, every);
for (const e of document.querySelectorAll('[data-href]')) e.textContent = new URL(e.dataset.href, location.href).href;
document.addEventListener('click', async (ev) => {
  const button = ev.target.closest('button[data-copy]');
  if (!button) return;
  const code = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(code.textContent);
    button.textContent = 'copied';
  } catch {
    getSelection().selectAllChildren(code); // no clipboard (plain http from afar): selected, for Ctrl-C
  }
});`;

export interface PageOptions {
  /** Links in the navigation bar: name -> href (relative to the page). */
  links: Record<string, string>;
  /** Links to the other components (--web.link), shown after the page's own. */
  external?: Readonly<Record<string, string>> | undefined;
  /** Unix milliseconds the page shows as "updated". */
  updated: number;
  /** Seconds between reloads. */
  refreshSeconds: number;
}

/** A whole page: title, navigation links, when it was rendered, body; it reloads itself. */
export function page(title: string, o: PageOptions, body: Html): string {
  const nav = [
    ...Object.entries(o.links).map(([text, href]) => html`<a href="${href}">${text}</a>`),
    ...Object.entries(o.external ?? {}).map(([text, href]) => html`<a class="external" href="${href}">${text}</a>`),
  ];
  return html`<!doctype html><html lang="en" data-refresh="${o.refreshSeconds}"><head><meta charset="utf-8"><title>${title}</title>
<noscript><meta http-equiv="refresh" content="${o.refreshSeconds}"></noscript><style>${raw(style)}</style></head>
<body><h1>${title}</h1><nav>${nav.map((a, i) => html`${i ? ' · ' : ''}${a}`)}</nav>
<p class="updated" id="updated">Updated <time datetime="${new Date(o.updated).toISOString()}">${when(o.updated)}</time> · reloads every ${o.refreshSeconds} s</p>
${body}<script type="module">${raw(script)}</script></body></html>`.text;
}

/** A small page of its own (a round that is gone): a message and a way back. */
export function notice(title: string, message: Html, back: { href: string; text: string }): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>${raw(style)}</style></head>
<body><h1>${title}</h1><p>${message}</p><p><a href="${back.href}">${back.text}</a></p></body></html>`.text;
}

/** Seconds as a short human duration. */
export function seconds(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms` : `${s.toFixed(2)} s`;
}

/** Unix milliseconds as a UTC time to the second: 2026-05-01 12:00:03Z. */
export const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** A span of time, to the second and in its two largest units: 42 s, 3 min 12 s, 2 h 5 min, 3 d 4 h. */
export function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const units: Array<[string, number]> = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  const first = units.findIndex(([, size]) => total >= size);
  if (first === -1) return '0 s';
  const [bigName, big] = units[first]!;
  const parts = [`${Math.floor(total / big)} ${bigName}`];
  const next = units[first + 1];
  if (next && Math.floor((total % big) / next[1]) > 0) parts.push(`${Math.floor((total % big) / next[1])} ${next[0]}`);
  return parts.join(' ');
}

/**
 * --web.link values (NAME=URL, an absolute http(s) URL) as the navigation links they add: the
 * exporter and the remediator do not know each other's address otherwise.
 */
export function parseLinks(values: readonly string[] | undefined, flag = 'web.link'): Record<string, string> {
  const links: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    const name = value.slice(0, Math.max(0, eq)).trim();
    let url: URL | undefined;
    try {
      url = new URL(value.slice(eq + 1));
    } catch {
      url = undefined;
    }
    if (eq <= 0 || name === '' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new UsageError(`--${flag}: expected NAME=URL with an http(s) URL, e.g. remediator=http://127.0.0.1:19151/, got "${value}"`);
    }
    links[name] = url.href;
  }
  return links;
}
