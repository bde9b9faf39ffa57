// Login: paste a project or admin token; it is checked against /api/me before it is kept.
import { AuthError, get, getToken, setToken } from '../api.js';
import { $, esc } from '../util.js';

export async function mount(el, ctx) {
  const reason = ctx.loginReason || ctx.query.get('reason') || '';
  el.innerHTML = `
    <form class="login panel pad" id="login-form" autocomplete="off">
      <div class="brand-big" title="万核 — ten thousand cores render one image"><span class="brand-mark" aria-hidden="true"><svg viewBox="0 0 32 32"><g fill="#e0a84a"><rect x="3" y="3" width="12" height="12" rx="2"/><rect x="17" y="3" width="12" height="12" rx="2" opacity=".7"/><rect x="3" y="17" width="12" height="12" rx="2" opacity=".45"/><rect x="17" y="17" width="12" height="12" rx="2" opacity=".25"/></g></svg></span><span class="brand-name">wanhe</span></div>
      <p>Render farm dashboard. Sign in with a project token (it sees that project's jobs) or an admin token (it sees every project).</p>
      <div class="notice error" id="login-error" role="alert" ${reason ? '' : 'hidden'}>${esc(reason)}</div>
      <label for="token">API token</label>
      <textarea id="token" name="token" spellcheck="false" rows="3" placeholder="paste the token printed by  wanhe project create NAME"></textarea>
      <div class="row">
        <span class="hint">Kept in this browser only (localStorage).</span>
        <button class="btn btn-primary" type="submit" id="sign-in">Sign in</button>
      </div>
    </form>`;
  const input = $('#token', el);
  const errBox = $('#login-error', el);
  input.value = reason ? '' : getToken();
  input.focus();
  const fail = (msg) => { errBox.textContent = msg; errBox.hidden = false; };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('#login-form', el).requestSubmit(); }
  });
  $('#login-form', el).addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { fail('Paste a token first. `wanhe project create NAME` prints one; `wanhe token list` shows the ones that exist.'); return; }
    const button = $('#sign-in', el);
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
      const me = await get('/api/me', { token, quietAuth: true });
      setToken(token);
      await ctx.signedIn(me);
    } catch (err) {
      if (err instanceof AuthError) {
        fail(`This token was refused by the server (${err.message}). Check that it was copied whole and has not been revoked (wanhe token list).`);
      } else {
        fail(err.message);
      }
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  return {};
}
