// The dashboard's only door to the farm: authenticated fetches and the live event stream.

const KEY = 'wanhe.token';

export function getToken() {
  try { return localStorage.getItem(KEY) || ''; } catch { return ''; }
}
export function setToken(token) {
  try { localStorage.setItem(KEY, token); } catch { /* private mode: kept for this page only */ }
}
export function clearToken() {
  try { localStorage.removeItem(KEY); } catch { /* ignore */ }
}

/** The server refused the token (401): the app sends the user to the login page. */
export class AuthError extends Error {
  constructor(message) { super(message); this.name = 'AuthError'; }
}
/** Any other non-2xx answer, with the server's own words. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.name = 'ApiError'; this.status = status; }
}

function detailOf(body, status) {
  try {
    const j = JSON.parse(body);
    const d = j.detail ?? j.message ?? j.error;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) {
      return d.map((e) => `${(e.loc || []).filter((x) => x !== 'body').join('.')}: ${e.msg}`).join('; ');
    }
    if (d) return JSON.stringify(d);
  } catch { /* not JSON */ }
  return body ? body.slice(0, 300) : `HTTP ${status}`;
}

let onAuthFailure = () => {};
export function setAuthFailureHandler(fn) { onAuthFailure = fn; }

/**
 * fetch + bearer token + JSON. `opts.as`: 'json' (default), 'text', or 'response'.
 * A 401 raises AuthError and tells the app (which shows the login page with the reason).
 */
export async function api(path, opts = {}) {
  const { method = 'GET', body, as = 'json', signal, token = getToken(), quietAuth = false } = opts;
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'cannot reach the wanhe server — is `wanhe serve` running?');
  }
  if (res.status === 401) {
    const msg = detailOf(await res.text(), 401);
    const err = new AuthError(msg);
    if (!quietAuth) onAuthFailure(err);
    throw err;
  }
  if (!res.ok) throw new ApiError(res.status, detailOf(await res.text(), res.status));
  if (as === 'response') return res;
  if (as === 'text') return res.text();
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => api(path, opts);
export const post = (path, body, opts = {}) => api(path, { ...opts, method: 'POST', body: body ?? {} });
export const patch = (path, body, opts = {}) => api(path, { ...opts, method: 'PATCH', body });

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** An image or video behind the token, as an object URL (an <img> cannot send headers). */
export async function blobUrl(path, opts = {}) {
  const res = await api(path, { ...opts, as: 'response' });
  const blob = await res.blob();
  return URL.createObjectURL(blob);
}

// ── live events ───────────────────────────────────────────────────────────
// One server-sent-event stream for the whole page, read with fetch so the token travels in
// the Authorization header (EventSource can only put it in the URL, where proxies and logs
// keep it). Listeners get {type, data}; status listeners get 'on' | 'off' | 'connecting'.
// A dropped stream reconnects with a backoff and resumes after the last event id.

const listeners = new Set();
const statusListeners = new Set();
let stream = null; // the AbortController of the open stream
let retryTimer = null;
let backoff = 1000;
let lastEventId = '';

function emit(type, raw) {
  let data = raw;
  try { data = JSON.parse(raw); } catch { /* plain text event */ }
  if (data && typeof data === 'object' && !Array.isArray(data) && data.type && type === 'message') {
    type = data.type;
  }
  for (const fn of listeners) {
    try { fn({ type, data }); } catch (err) { console.error(err); }
  }
}
function setStatus(s) { for (const fn of statusListeners) fn(s); }

/** One event block of the text/event-stream format (fields per the HTML standard). */
function dispatchBlock(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue; // a heartbeat comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') lastEventId = value;
  }
  if (data.length) emit(type, data.join('\n'));
}

async function readEvents(token, signal) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const res = await fetch('/api/events', { headers, signal, cache: 'no-store' });
  if (res.status === 401) {
    onAuthFailure(new AuthError(detailOf(await res.text(), 401)));
    return false; // no retry: the login page takes over
  }
  if (!res.ok || !res.body) throw new ApiError(res.status, `event stream: HTTP ${res.status}`);
  backoff = 1000;
  setStatus('on');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return true;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      dispatchBlock(buffer.slice(0, end));
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
    }
  }
}

export function connectEvents() {
  disconnectEvents();
  const token = getToken();
  if (!token) return;
  setStatus('connecting');
  const controller = new AbortController();
  stream = controller;
  readEvents(token, controller.signal)
    .catch((err) => { if (err.name !== 'AbortError') console.warn('event stream:', err.message); return true; })
    .then((retry) => {
      if (stream !== controller) return; // replaced or closed meanwhile
      stream = null;
      setStatus('off');
      if (!retry) return;
      retryTimer = setTimeout(connectEvents, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
}
export function disconnectEvents() {
  clearTimeout(retryTimer);
  if (stream) { const s = stream; stream = null; s.abort(); }
  setStatus('off');
}
export function onEvent(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export function onEventStatus(fn) { statusListeners.add(fn); return () => statusListeners.delete(fn); }
