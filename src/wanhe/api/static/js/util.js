// Small helpers shared by the views: escaping, number and time formats, colours.

export const JOB_STATES = ['queued', 'running', 'paused', 'done', 'failed', 'cancelled'];
export const TASK_STATES = ['waiting', 'ready', 'running', 'done', 'failed', 'cancelled'];
export const FINAL = new Set(['done', 'failed', 'cancelled']);

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

export function $(sel, root = document) { return root.querySelector(sel); }
export function $$(sel, root = document) { return Array.from(root.querySelectorAll(sel)); }

/** Seconds since the epoch (the API's timestamps) or an ISO string -> ms. */
export function toMs(t) {
  if (t == null || t === '') return null;
  if (typeof t === 'number') return t < 1e12 ? t * 1000 : t;
  const n = Number(t);
  if (!Number.isNaN(n)) return toMs(n);
  const d = Date.parse(t);
  return Number.isNaN(d) ? null : d;
}

export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${String(h % 24).padStart(2, '0')}h`;
}

export function fmtAgo(t) {
  const ms = toMs(t);
  if (ms == null) return '—';
  const s = (Date.now() - ms) / 1000;
  if (s < 5) return 'just now';
  if (s < 0) return 'in ' + fmtDuration(-s);
  return fmtDuration(s) + ' ago';
}

export function fmtTime(t) {
  const ms = toMs(t);
  if (ms == null) return '—';
  const d = new Date(ms);
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}`;
}

export function fmtDateTime(t) {
  const ms = toMs(t);
  if (ms == null) return '—';
  return new Date(ms).toLocaleString([], { hour12: false });
}

/** Core-hours with sensible precision: 0.0031, 0.42, 12.4, 3,410. */
export function fmtCoreHours(h) {
  if (h == null || !Number.isFinite(h)) return '—';
  if (h === 0) return '0';
  const a = Math.abs(h);
  if (a < 0.01) return h.toFixed(4);
  if (a < 1) return h.toFixed(3);
  if (a < 100) return h.toFixed(1);
  return Math.round(h).toLocaleString('en-US');
}

export function fmtCoreSeconds(s) {
  if (s == null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} core-s`;
  if (s < 3600 * 2) return `${(s / 60).toFixed(1)} core-min`;
  return `${fmtCoreHours(s / 3600)} core-h`;
}

export function fmtBytes(b) {
  if (b == null || !Number.isFinite(b)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = b;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(n, digits = 0) {
  if (n == null || !Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function badge(state) {
  const s = esc(state || 'unknown');
  return `<span class="badge s-${s}" data-state="${s}">${s}</span>`;
}

/** A stacked progress bar from task counts ({state: n}) with a fallback fraction. */
export function progressBar(progress, tasks) {
  const total = tasks ? Object.values(tasks).reduce((a, b) => a + b, 0) : 0;
  const p = Math.max(0, Math.min(1, progress ?? 0));
  let inner;
  if (total > 0) {
    const seg = (k) => ((tasks[k] || 0) / total) * 100;
    inner = ['done', 'running', 'failed', 'cancelled']
      .filter((k) => tasks[k])
      .map((k) => `<span class="b-${k}" style="width:${seg(k).toFixed(2)}%"></span>`)
      .join('');
  } else {
    inner = `<span class="b-done" style="width:${(p * 100).toFixed(1)}%"></span>`;
  }
  const title = total
    ? Object.entries(tasks).map(([k, v]) => `${k}: ${v}`).join(', ')
    : `${Math.round(p * 100)}%`;
  return `<div class="progress" title="${esc(title)}"><div class="bar">${inner}</div><span class="pct">${Math.floor(p * 100)}%</span></div>`;
}

// A perceptual ramp for heatmaps (dark blue-violet → magenta → orange → pale yellow, "inferno"-like).
const RAMP = [
  [0.0, [22, 20, 48]],
  [0.2, [62, 28, 104]],
  [0.4, [128, 37, 110]],
  [0.6, [196, 62, 78]],
  [0.8, [240, 128, 40]],
  [1.0, [252, 230, 130]],
];
export function heatColor(t) {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  for (let i = 1; i < RAMP.length; i += 1) {
    const [x1, c1] = RAMP[i];
    if (x <= x1) {
      const [x0, c0] = RAMP[i - 1];
      const f = (x - x0) / (x1 - x0);
      const c = c0.map((v, j) => Math.round(v + (c1[j] - v) * f));
      return `rgb(${c[0]},${c[1]},${c[2]})`;
    }
  }
  return 'rgb(252,230,130)';
}
export function heatGradientCss() {
  return `linear-gradient(90deg, ${RAMP.map(([x, c]) => `rgb(${c.join(',')}) ${x * 100}%`).join(', ')})`;
}

// Distinct, calm colours for projects in charts.
const PALETTE = ['#5b9bf0', '#e0a84a', '#4fbf8f', '#c685e0', '#e5736b', '#5cc6d0', '#b5c15a', '#e08cb4', '#8d9bb0', '#d9c36a'];
export function projectColor(name, names) {
  const i = names ? names.indexOf(name) : -1;
  if (i >= 0) return PALETTE[i % PALETTE.length];
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export function stateColor(state) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--s-${state}`).trim() || '#555';
}

/** Run fn at most once per `ms`; a call during the wait is folded into the one scheduled. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, ms - (Date.now() - last));
    timer = setTimeout(() => { last = Date.now(); timer = null; fn(); }, wait);
  };
}
