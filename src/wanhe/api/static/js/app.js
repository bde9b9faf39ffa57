// wanhe dashboard: a hash-routed single page app. No build step; every file is served by wanhe.
import {
  AuthError, ApiError, clearToken, connectEvents, disconnectEvents, get, getToken,
  onEvent, onEventStatus, setAuthFailureHandler,
} from './api.js';
import { $, $$, esc } from './util.js';
import * as loginView from './views/login.js';
import * as jobsView from './views/jobs.js';
import * as jobView from './views/job.js';
import * as usageView from './views/usage.js';
import * as workersView from './views/workers.js';
import * as genView from './views/gen.js';

const ROUTES = [
  [/^\/login$/, loginView, 'login'],
  [/^\/jobs$/, jobsView, 'jobs'],
  [/^\/jobs\/([^/]+)$/, jobView, 'jobs'],
  [/^\/usage$/, usageView, 'usage'],
  [/^\/workers$/, workersView, 'workers'],
  [/^\/gen\/([^/]+)$/, genView, 'jobs'],
];

const state = {
  me: null, // {project, admin}
  view: null, // the mounted view: {unmount?, onEvent?}
  loginReason: '',
};

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function toast(message, kind = '') {
  let box = $('.toast');
  if (!box) {
    box = document.createElement('div');
    box.className = 'toast';
    document.body.append(box);
  }
  const div = document.createElement('div');
  div.className = kind;
  div.textContent = message;
  box.append(div);
  setTimeout(() => div.remove(), kind === 'err' ? 8000 : 3500);
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/jobs';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

function setBanner(text, kind = '') {
  const b = $('#banner');
  if (!text) { b.hidden = true; return; }
  b.className = `banner ${kind}`;
  b.textContent = text;
  b.hidden = false;
}

function showChrome(on) {
  $('#topbar').hidden = !on;
  if (!on) setBanner('');
}

function renderWho() {
  const me = state.me;
  if (!me) { $('#who').innerHTML = ''; return; }
  $('#who').innerHTML = me.admin
    ? '<span class="who-label">signed in as </span><b>admin</b>'
    : `<span class="who-label">project </span><b>${esc(me.project ?? '?')}</b>`;
}

/** Who is this token? null when there is none; throws AuthError when it is refused. */
async function whoAmI() {
  if (!getToken()) return null;
  return get('/api/me', { quietAuth: true });
}

export function signOut(reason = '') {
  clearToken();
  disconnectEvents();
  state.me = null;
  state.loginReason = reason;
  navigate('#/login');
}

async function route() {
  const { path, query } = parseHash();
  const match = ROUTES.map(([re, mod, nav]) => [path.match(re), mod, nav]).find(([m]) => m);
  if (!match) { navigate('#/jobs'); return; }
  const [m, mod, nav] = match;

  if (state.view?.unmount) {
    try { state.view.unmount(); } catch (err) { console.error(err); }
  }
  state.view = null;
  const el = $('#view');

  if (mod !== loginView) {
    if (!state.me) {
      try {
        state.me = await whoAmI();
      } catch (err) {
        if (err instanceof AuthError) {
          signOut(`The server refused this token: ${err.message}. It may be mistyped, revoked or expired — paste a valid one.`);
        } else {
          showChrome(false);
          el.innerHTML = `<div class="login panel pad"><div class="notice error">${esc(err.message)}</div>
            <button class="btn" type="button" id="retry">Try again</button></div>`;
          $('#retry').onclick = () => route();
        }
        return;
      }
      if (!state.me) { navigate('#/login'); return; }
      renderWho();
      connectEvents();
    }
    showChrome(true);
  } else {
    showChrome(false);
  }
  for (const a of $$('#nav a')) a.classList.toggle('active', a.dataset.nav === nav);

  const ctx = {
    me: state.me,
    params: m.slice(1).map(decodeURIComponent),
    query,
    navigate,
    toast,
    setQuery(q) {
      const s = new URLSearchParams(q).toString();
      history.replaceState(null, '', `#${path}${s ? `?${s}` : ''}`);
    },
    loginReason: state.loginReason,
    async signedIn(me) {
      state.me = me;
      state.loginReason = '';
      renderWho();
      connectEvents();
      navigate('#/jobs');
    },
  };
  // Each view gets a fresh container: a late callback of the previous view writes to a detached
  // element instead of the new page.
  const root = document.createElement('div');
  root.className = 'view-root';
  el.replaceChildren(root);
  el.dataset.view = mod === loginView ? 'login' : path.split('/')[1];
  try {
    const mounted = (await mod.mount(root, ctx)) || {};
    if (root.isConnected) state.view = mounted;
    else mounted.unmount?.();
  } catch (err) {
    if (err instanceof AuthError) return; // the auth handler already moved us
    console.error(err);
    root.innerHTML = `<div class="error-box">${esc(err instanceof ApiError ? err.message : String(err))}</div>`;
  }
}

setAuthFailureHandler((err) => {
  if (!getToken()) return;
  signOut(`The server refused this token: ${err.message}. It may have been revoked or mistyped — paste a valid one.`);
});

onEvent((evt) => {
  if (state.view?.onEvent) {
    try { state.view.onEvent(evt); } catch (err) { console.error(err); }
  }
});

onEventStatus((s) => {
  const live = $('#live');
  live.classList.toggle('on', s === 'on');
  live.classList.toggle('off', s === 'off');
  live.querySelector('.live-label').textContent = s === 'on' ? 'live' : s === 'off' ? 'reconnecting' : 'connecting';
  live.title = s === 'on' ? 'live updates from the farm' : 'no live connection: the page polls every few seconds';
  if (state.view?.onEventStatus) state.view.onEventStatus(s);
});

$('#logout').onclick = () => signOut('');
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  if (e.reason instanceof AuthError) { e.preventDefault(); return; }
  if (e.reason instanceof ApiError) { e.preventDefault(); toast(e.reason.message, 'err'); }
});
route();
