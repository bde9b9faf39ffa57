// Contact sheet of a generation job: each shot's candidates as a grid with their scores; pick,
// reject or ask for more, by mouse or keyboard (arrows / h j k l move, p pick, x reject,
// c clear, m four more of this shot).
import { blobUrl, get, post } from '../api.js';
import { $, $$, esc } from '../util.js';

export async function mount(el, ctx) {
  const id = ctx.params[0];
  let alive = true;
  let data = null;
  let focus = [0, 0]; // shot, position in the shot's row
  const urls = new Map(); // "shot/index" -> object URL of the file
  el.innerHTML = `
    <div class="page-head"><a href="#/jobs/${esc(id)}" class="muted">job ${esc(id)}</a>
      <span class="faint">/</span><h1>Contact sheet</h1><span id="gen-state" class="muted"></span>
      <span class="spacer"></span>
      <span class="muted" style="font-size:12px">arrows move · p pick · x reject · c clear · m 4 more</span></div>
    <div id="gen-note" class="muted"></div>
    <div id="sheet" class="sheet"><div class="empty">Loading…</div></div>`;

  // a video candidate plays in <video> (muted, looping; an <img> showed it broken)
  function media(c, si) {
    return /\.(mp4|mov|webm)$/i.test(c.file || '')
      ? `<video data-key="${si}/${c.index}" muted loop autoplay playsinline controls aria-label="candidate ${c.index}"></video>`
      : `<img alt="candidate ${c.index}" data-key="${si}/${c.index}">`;
  }

  function cell(shot, c, si, ci) {
    const s = c.score || {};
    const on = focus[0] === si && focus[1] === ci;
    const flags = (s.flags || []).join('; ');
    return `<figure class="cand ${c.verdict || ''} ${on ? 'focus' : ''}" tabindex="-1"
        data-shot="${si}" data-pos="${ci}" data-index="${c.index}" data-verdict="${esc(c.verdict || '')}">
      <div class="thumb">${c.state === 'done' ? media(c, si) : c.state === 'running' ? `<img alt="preview" data-preview="${si}/${c.index}"><span class="muted">${Math.round(100 * (c.progress || 0))}%</span>` : `<span class="muted">${esc(c.state)}</span>`}</div>
      <figcaption><b>#${c.index}</b> seed ${esc(c.seed)}
        ${s.rank ? ` · rank ${s.rank} · ${Number(s.score).toFixed(3)}` : ''}
        ${c.verdict ? ` · <b class="verdict">${esc(c.verdict)}</b>` : ''}
        ${flags ? `<div class="flags">${esc(flags)}</div>` : ''}
        ${s.rank ? `<div class="faint" style="font-size:11px">sharp ${Number(s.sharpness).toFixed(2)} · exp ${Number(s.exposure).toFixed(2)} · noise ${Number(s.noise).toFixed(2)}${s.prompt_adherence != null ? ` · prompt ${Number(s.prompt_adherence).toFixed(2)}` : ''}</div>` : ''}
      </figcaption></figure>`;
  }

  function render() {
    $('#gen-state', el).textContent = data.state;
    $('#gen-note', el).textContent = data.note || '';
    $('#sheet', el).innerHTML = data.shots.map((shot, si) => `
      <section class="panel shot" data-shot="${si}">
        <div class="panel-head"><h2>${esc(shot.name)}</h2><span class="muted">${esc(shot.model)} · ${esc(shot.prompt)}</span>
          <span class="spacer"></span><span class="muted">chosen: ${shot.chosen ? `#${shot.chosen.index} (${esc(shot.chosen.why)})` : '—'}</span></div>
        <div class="cands">${shot.candidates.map((c, ci) => cell(shot, c, si, ci)).join('')}</div>
      </section>`).join('') || '<div class="empty">No shots.</div>';
    for (const img of $$('img[data-preview]', el)) { // latents of a candidate being made
      const [si, index] = img.dataset.preview.split('/');
      blobUrl(`/api/gen/${id}/preview/${si}/${index}`).then((u) => {
        if (alive && img.isConnected) img.src = u; else URL.revokeObjectURL(u);
      }).catch(() => { img.remove(); });
    }
    for (const item of $$('[data-key]', el)) {
      const key = item.dataset.key;
      if (urls.has(key)) { item.src = urls.get(key); continue; }
      const [si, index] = key.split('/');
      const c = data.shots[si].candidates.find((x) => String(x.index) === index);
      if (!c?.file) continue;
      blobUrl(`/api/gen/${id}/file/${si}/${index}`).then((u) => {
        urls.set(key, u);
        if (alive) for (const i of $$(`[data-key="${key}"]`, el)) i.src = u;
      }).catch(() => {});
    }
  }

  async function load() {
    data = await get(`/api/gen/${id}`);
    if (alive) render();
  }

  async function verdict(v) {
    const shot = data.shots[focus[0]];
    const c = shot?.candidates[focus[1]];
    if (!c) return;
    await post(`/api/gen/${id}/picks`, { shot: focus[0], candidate: c.index, verdict: v });
    ctx.toast(`${shot.name} #${c.index}: ${v}`);
    await load();
  }

  function onKey(e) {
    if (!data || e.target.closest?.('input,textarea')) return;
    const rows = data.shots.map((s) => s.candidates.length);
    const move = { ArrowLeft: [0, -1], h: [0, -1], ArrowRight: [0, 1], l: [0, 1],
      ArrowUp: [-1, 0], k: [-1, 0], ArrowDown: [1, 0], j: [1, 0] }[e.key];
    if (move) {
      e.preventDefault();
      const si = Math.max(0, Math.min(rows.length - 1, focus[0] + move[0]));
      const ci = Math.max(0, Math.min((rows[si] || 1) - 1, (si === focus[0] ? focus[1] : 0) + move[1]));
      focus = [si, ci];
      render();
      $('.cand.focus', el)?.scrollIntoView({ block: 'nearest' });
    } else if (e.key === 'p') verdict('picked');
    else if (e.key === 'x') verdict('rejected');
    else if (e.key === 'c') verdict('clear');
    else if (e.key === 'm') {
      post(`/api/gen/${id}/more`, { shot: focus[0], count: 4 }).then((r) => ctx.toast(`job ${r.id}: 4 more candidates`));
    }
  }
  el.addEventListener('click', (e) => {
    const f = e.target.closest('figure.cand');
    if (!f) return;
    focus = [Number(f.dataset.shot), Number(f.dataset.pos)];
    render();
  });
  document.addEventListener('keydown', onKey);
  await load();
  const timer = setInterval(() => { if (data && !['done', 'failed', 'cancelled'].includes(data.state)) load(); }, 3000);
  return {
    unmount() {
      alive = false;
      clearInterval(timer);
      document.removeEventListener('keydown', onKey);
      for (const u of urls.values()) URL.revokeObjectURL(u);
    },
  };
}
