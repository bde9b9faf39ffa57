// One job, its page made of the panels its job type declares (`JobType.panels`, the job's
// `panels`): frames and tiles by state, where the core-seconds went, the last frame, the
// preview video, a story's reel, the deliverable, … — and what every job has: per-task logs
// (with follow), actions, usage, failures, outputs and spec. A panel the job's type does not
// declare is not on the page. Everything updates live.
import { ApiError, api, blobUrl, get, patch, post } from '../api.js';
import {
  $, $$, FINAL, badge, esc, fmtBytes, fmtCoreHours, fmtCoreSeconds, fmtDateTime, fmtDuration, fmtNum,
  fmtTime, heatColor, heatGradientCss, progressBar, stateColor, throttle, toMs,
} from '../util.js';
import { deliverablePanel, mountDeliverable } from './deliverable.js';
import { estimateCell } from './estimate.js';
import { kitsuCell } from './kitsu.js';
import { mountStory, storyPanel } from './story.js';

const TASK_PAGE = 1000; // GET …/tasks page size
const TASKS_SHOWN = 5000; // the task list shows at most this many (it counts them all)
const TILE_STATES = ['waiting', 'ready', 'running', 'done', 'failed', 'cancelled'];

function frameLabel(n) { return `f${String(n).padStart(4, '0')}`; }

// The frame's automatic quality checks (--qc): a pass, or a flag with the reasons on hover.
function qcBadge(qc) {
  if (!qc) return '';
  const bad = qc.flagged || !qc.passed;
  const why = bad ? (qc.reasons || []).join('; ') : 'all quality checks passed';
  const extra = qc.rerender ? ` (${qc.rerender})` : '';
  return `<span class="qc ${bad ? 'qc-bad' : 'qc-ok'}" data-qc="${bad ? 'flagged' : 'passed'}" title="QC: ${esc(why + extra)}">QC ${bad ? '✗' : '✓'}</span>`;
}

/** The tile grid of this job (columns x rows) and the frame's aspect ratio. */
function gridOf(job) {
  const spec = job.spec || {};
  const tx = Number(spec.tiles_x) || 0;
  const ty = Number(spec.tiles_y) || 0;
  const maxTiles = Math.max(1, ...(job.frames || []).map((f) => (f.tiles || []).length));
  let cols = tx;
  let rows = ty;
  if (!cols || !rows || cols * rows < maxTiles) {
    cols = Math.ceil(Math.sqrt(maxTiles));
    rows = Math.ceil(maxTiles / cols);
  }
  const w = Number(spec.width) || 16;
  const h = Number(spec.height) || 9;
  return { cols, rows, aspect: w / h };
}

const STATE_RANK = { failed: 0, running: 1, ready: 2, waiting: 3, cancelled: 4, done: 5 };

/** The frame's tiles by index; sample chunks of one tile fold into it (worst state, summed cost). */
function tilesOf(frame, count) {
  const byIndex = new Map();
  for (const t of frame.tiles || []) {
    const i = Number(t.tile ?? 0);
    const seen = byIndex.get(i);
    if (!seen) { byIndex.set(i, { tile: i, state: t.state, core_seconds: t.core_seconds || 0, chunks: 1 }); continue; }
    seen.core_seconds += t.core_seconds || 0;
    seen.chunks += 1;
    // the least finished chunk tells the tile's state (some chunks done, one running: running)
    if ((STATE_RANK[t.state] ?? 9) < (STATE_RANK[seen.state] ?? 9)) seen.state = t.state;
  }
  const out = [];
  for (let i = 0; i < count; i += 1) out.push(byIndex.get(i) || { tile: i, state: frame.state === 'done' ? 'done' : 'waiting', core_seconds: 0 });
  return out;
}

function frameCore(f) {
  if (Number.isFinite(f.core_seconds)) return f.core_seconds;
  return (f.tiles || []).reduce((a, t) => a + (t.core_seconds || 0), 0);
}

function findStrings(obj, test, out = []) {
  if (obj == null) return out;
  if (typeof obj === 'string') { if (test(obj)) out.push(obj); return out; }
  if (Array.isArray(obj)) { for (const v of obj) findStrings(v, test, out); return out; }
  if (typeof obj === 'object') for (const v of Object.values(obj)) findStrings(v, test, out);
  return out;
}

export async function mount(el, ctx) {
  const id = ctx.params[0];
  let job = null;
  let tasks = [];
  let tasksTotal = 0; // the job's tasks, of which `tasks` holds the first TASKS_SHOWN at most
  let alive = true;
  let latest = { doneKey: '', url: '', frame: null, pinned: null };
  let video = { src: '', url: '' };
  let logCtl = null; // AbortController of the log being shown
  let selectedTask = ctx.query.get('task') || '';
  let follow = true;
  let shownState = '';
  let confirmTimer = null;
  let panels = null; // the panels the job's type declares (a Set), once the job is loaded

  el.innerHTML = `
    <div class="page-head">
      <a href="#/jobs" class="muted">Jobs</a><span class="faint">/</span>
      <h1 id="job-title">job ${esc(id)}</h1>
      <span id="job-badge"></span>
      <span class="spacer"></span>
      <div class="actions" id="actions">
        <button class="btn" type="button" data-act="pause">Pause</button>
        <button class="btn" type="button" data-act="resume">Resume</button>
        <button class="btn" type="button" data-act="retry" title="run the failed tasks again">Retry failed</button>
        <button class="btn btn-danger" type="button" data-act="cancel">Cancel job</button>
        <form class="prio-form" id="prio-form" title="priority 0–100: higher runs first">
          <label class="field" for="prio-input">Priority</label>
          <input id="prio-input" type="number" min="0" max="100" step="1" inputmode="numeric">
          <button class="btn" type="submit">Set</button>
        </form>
      </div>
    </div>
    <div id="job-error"></div>
    <div class="kv" id="job-kv"></div>
    <p class="job-msg" id="job-msg" hidden></p>
    <div class="grid-2" style="margin-top:12px">
      <div class="stack">
        <section class="panel" id="frames-panel" data-panel="frames">
          <div class="panel-head"><h2>Frames &amp; tiles</h2><span class="spacer"></span>
            <div class="legend">${TILE_STATES.map((s) => `<span><i class="tile s-${s}" style="animation:none"></i>${s}</span>`).join('')}</div></div>
          <div class="panel-body"><div class="frames" id="frames-grid"><div class="empty">Loading…</div></div></div>
        </section>
        <section class="panel" id="heat-panel" data-panel="heatmap">
          <div class="panel-head"><h2>Cost heatmap</h2><span class="muted sub" style="font-size:12px">core-seconds per tile and per frame</span><span class="spacer"></span>
            <span class="heat-scale"><span id="heat-min">0</span><span class="ramp" style="background:${heatGradientCss()}"></span><span id="heat-max">—</span></span></div>
          <div class="panel-body"><div class="frames" id="heatmap"></div><svg class="frame-bars" id="frame-bars" preserveAspectRatio="none"></svg><div class="heat-top" id="heat-top"></div></div>
        </section>
        <section class="panel" id="logs-panel">
          <div class="panel-head"><h2>Tasks &amp; logs</h2><span class="spacer"></span><span class="muted" id="task-count" style="font-size:12px"></span></div>
          <div class="logs">
            <div class="task-list" id="task-list"></div>
            <div class="log-pane">
              <div class="log-bar"><span id="log-title" class="mono">select a task</span><span class="spacer"></span>
                <label class="field"><input type="checkbox" id="log-follow" checked> follow</label>
                <button class="btn btn-sm" type="button" id="log-reload">Reload</button></div>
              <pre class="log" id="log"></pre>
            </div>
          </div>
        </section>
      </div>
      <div class="stack">
        ${deliverablePanel()}
        ${storyPanel().replace('<section ', '<section data-panel="reel" ')}
        <section class="panel" id="latest-panel" data-panel="latest">
          <div class="panel-head"><h2 id="latest-title">Last finished frame</h2><span class="spacer"></span><button class="btn btn-sm btn-ghost" type="button" id="latest-unpin" hidden>back to latest</button></div>
          <div class="panel-body"><div class="latest" id="latest"><span class="muted">no finished frame yet</span></div></div>
        </section>
        <section class="panel" id="video-panel" data-panel="video" hidden>
          <div class="panel-head"><h2>Preview video</h2></div>
          <div class="panel-body"><div class="latest" id="video"></div></div>
        </section>
        <section class="panel" id="usage-panel">
          <div class="panel-head"><h2>Usage</h2></div>
          <div class="panel-body" id="usage"></div>
        </section>
        <section class="panel" id="failures-panel">
          <div class="panel-head"><h2>Failures</h2><span class="spacer"></span><span class="muted" id="failure-count" style="font-size:12px"></span></div>
          <div class="panel-body" id="failures"></div>
        </section>
        <section class="panel" id="outputs-panel">
          <div class="panel-head"><h2>Outputs</h2><span class="spacer"></span><span class="muted" id="outputs-count" style="font-size:12px"></span></div>
          <div class="out-list" id="outputs"></div>
        </section>
        <section class="panel" id="spec-panel">
          <details><summary class="panel-head" style="cursor:pointer"><h2>Spec</h2></summary>
          <div class="panel-body"><pre class="log" id="spec" style="min-height:0;max-height:320px"></pre></div></details>
        </section>
      </div>
    </div>`;

  const story = mountStory(el);
  const deliverable = mountDeliverable(el);

  // The page keeps the panels the job's type declares and drops the others (once: a job's
  // kind does not change).
  function compose() {
    if (panels) return;
    panels = new Set(job.panels || []);
    for (const section of $$('[data-panel]', el)) {
      if (!panels.has(section.dataset.panel)) section.remove();
    }
  }

  // ── header, numbers, actions ────────────────────────────────────────────
  function renderHead() {
    $('#job-title', el).textContent = job.name || `job ${job.id}`;
    if (panels.has('candidates') && !$('#sheet-link', el)) {
      $('#job-badge', el).insertAdjacentHTML('afterend', `<a id="sheet-link" class="btn btn-sm" href="#/gen/${esc(job.id)}">Contact sheet</a>`);
    }
    $('#job-title', el).title = `job ${job.id}`;
    $('#job-badge', el).innerHTML = `${badge(job.state)} <span class="faint mono">#${esc(job.id)}</span>`;
    const frames = job.frames || [];
    const fdone = frames.filter((f) => f.state === 'done').length;
    const t = job.tasks || {};
    const tTotal = Object.values(t).reduce((a, b) => a + b, 0);
    const start = toMs(job.started_at);
    const run = start == null ? null : ((toMs(job.finished_at) ?? Date.now()) - start) / 1000;
    const spec = job.spec || {};
    const shape = [
      spec.width && spec.height ? `${spec.width}×${spec.height}` : '',
      spec.tiles_x && spec.tiles_x * spec.tiles_y > 1 ? `${spec.tiles_x}×${spec.tiles_y} tiles` : '',
      spec.samples ? `${spec.samples} spp` : '',
    ].filter(Boolean).join(' · ');
    const cells = [
      ['Progress', `<div style="padding-top:5px">${progressBar(job.progress, job.tasks)}</div>`],
      frames.length ? ['Frames', `${fdone}<small> / ${frames.length}</small>`] : ['Kind', esc(job.kind || '—')],
      ['Tasks', `${t.done || 0}<small> / ${tTotal}${t.running ? ` · ${t.running} run` : ''}${t.failed ? ` · ${t.failed} fail` : ''}</small>`],
      ['Core-hours', esc(fmtCoreHours(job.core_hours))],
      ...(job.gpu_hours ? [['GPU-hours', esc(fmtCoreHours(job.gpu_hours))]] : []),
      ['ETA', esc(FINAL.has(job.state) || job.eta_s == null ? '—' : fmtDuration(job.eta_s))],
      ...(job.estimate ? [['Estimate', estimateCell(job.estimate)]] : []),
      ...(job.kitsu ? [['Kitsu', kitsuCell(job.kitsu)]] : []),
      ['Run time', esc(fmtDuration(run))],
      ['Priority', esc(job.priority ?? '—')],
      ['Project', esc(job.project ?? '—')],
      ['Submitter', esc(job.submitter || '—')],
      ['Submitted', `<span title="${esc(fmtDateTime(job.created_at))}">${esc(fmtTime(job.created_at))}</span>`],
      ['Shape', `<small>${esc(shape || '—')}</small>`],
    ];
    $('#job-kv', el).innerHTML = cells.map(([k, v], i) => `<div class="${i === 0 || k === 'Submitter' || k === 'Shape' || k === 'Estimate' || k === 'Kitsu' ? 'wide' : ''}"><div class="k">${k}</div><div class="v">${v}</div></div>`).join('');
    const msg = $('#job-msg', el);
    // the job's own message, then what the service could not do (e.g. storage unreachable)
    const text = [job.message, ...(job.warnings || [])].filter(Boolean).join('\n');
    msg.hidden = !text;
    msg.textContent = text;
    msg.classList.toggle('bad', job.state === 'failed' || (job.warnings || []).length > 0);

    const s = job.state;
    $('[data-act="pause"]', el).disabled = !['queued', 'running'].includes(s);
    $('[data-act="resume"]', el).disabled = s !== 'paused';
    $('[data-act="cancel"]', el).disabled = FINAL.has(s);
    $('[data-act="retry"]', el).disabled = !(s === 'failed' || s === 'cancelled');
    const prio = $('#prio-input', el);
    if (document.activeElement !== prio) prio.value = job.priority ?? 50;
  }

  async function act(name) {
    const btn = $(`[data-act="${name}"]`, el);
    if (name === 'cancel' && btn.dataset.armed !== '1') {
      btn.dataset.armed = '1';
      btn.textContent = 'Confirm cancel';
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => { btn.dataset.armed = ''; btn.textContent = 'Cancel job'; }, 4000);
      return;
    }
    clearTimeout(confirmTimer);
    btn.dataset.armed = '';
    if (name === 'cancel') btn.textContent = 'Cancel job';
    btn.disabled = true;
    try {
      await post(`/api/jobs/${encodeURIComponent(id)}/${name}`);
      ctx.toast(`${{ cancel: 'Cancelled', pause: 'Paused', resume: 'Resumed', retry: 'Retrying failed tasks of' }[name]} job ${id}`);
    } catch (err) {
      if (err.name !== 'AuthError') ctx.toast(`${name} failed: ${err.message}`, 'err');
    }
    await load();
  }
  $('#actions', el).addEventListener('click', (e) => {
    const b = e.target.closest('[data-act]');
    if (b && !b.disabled) act(b.dataset.act);
  });
  $('#prio-form', el).addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = Number($('#prio-input', el).value);
    if (!Number.isInteger(v) || v < 0 || v > 100) { ctx.toast('priority is a whole number from 0 to 100', 'err'); return; }
    try {
      await patch(`/api/jobs/${encodeURIComponent(id)}`, { priority: v });
      ctx.toast(`Priority of job ${id} set to ${v}`);
      $('#prio-input', el).blur();
    } catch (err) {
      if (err.name !== 'AuthError') ctx.toast(`priority: ${err.message}`, 'err');
    }
    await load();
  });

  // ── frames and tiles ───────────────────────────────────────────────────
  function cellSize(nFrames, cols) {
    const base = nFrames > 400 ? 30 : nFrames > 120 ? 40 : nFrames > 24 ? 56 : nFrames > 8 ? 84 : 120;
    return Math.max(base, Math.min(220, cols * 12));
  }

  function renderFrames() {
    if (!panels.has('frames') && !panels.has('heatmap')) return;
    const frames = job.frames || [];
    const g = gridOf(job);
    const count = g.cols * g.rows;
    const size = cellSize(frames.length, g.cols);
    // either panel may be left out by the job's type: it then draws into a detached box
    const box = $('#frames-grid', el) || document.createElement('div');
    const heat = $('#heatmap', el) || document.createElement('div');
    box.style.setProperty('--cell', `${size}px`);
    heat.style.setProperty('--cell', `${size}px`);
    if (!frames.length) {
      box.innerHTML = '<div class="empty">No frames planned yet.</div>';
      heat.innerHTML = '';
      return;
    }
    let maxTile = 0;
    let maxFrame = 0;
    let minTile = Infinity;
    for (const f of frames) {
      maxFrame = Math.max(maxFrame, frameCore(f));
      for (const t of f.tiles || []) {
        if (t.core_seconds > 0) { maxTile = Math.max(maxTile, t.core_seconds); minTile = Math.min(minTile, t.core_seconds); }
      }
    }
    const tileStyle = `grid-template-columns:repeat(${g.cols},1fr);aspect-ratio:${g.aspect.toFixed(4)}`;
    const stateCells = [];
    const heatCells = [];
    for (const f of frames) {
      const tiles = tilesOf(f, count);
      const fc = frameCore(f);
      const pin = f.preview_url ? ' style="cursor:pointer"' : '';
      stateCells.push(`<div class="frame" data-frame="${esc(f.frame)}" data-state="${esc(f.state)}"${pin} title="frame ${esc(f.frame)}: ${esc(f.state)}${f.preview_url ? ' — click to view' : ''}">
        <div class="fl"><span>${frameLabel(f.frame)}</span>${qcBadge(f.qc)}<span style="color:${stateColor(f.state === 'queued' ? 'waiting' : f.state)}">●</span></div>
        <div class="tiles" style="${tileStyle}">${tiles.map((t) => `<div class="tile s-${esc(t.state)}" data-tile="${esc(t.tile)}" data-state="${esc(t.state)}" title="frame ${esc(f.frame)} tile ${esc(t.tile)}: ${esc(t.state)}${t.core_seconds ? `, ${esc(fmtCoreSeconds(t.core_seconds))}` : ''}"></div>`).join('')}</div>
      </div>`);
      heatCells.push(`<div class="frame heat-frame" data-frame="${esc(f.frame)}" data-core-seconds="${fc.toFixed(3)}" title="frame ${esc(f.frame)}: ${esc(fmtCoreSeconds(fc))}">
        <div class="fl"><span>${frameLabel(f.frame)}</span><span>${fc ? esc(fmtDuration(fc)) : ''}</span></div>
        <div class="tiles" style="${tileStyle}">${tiles.map((t) => {
          const cs = t.core_seconds || 0;
          const bg = cs > 0 ? heatColor(maxTile > 0 ? cs / maxTile : 0) : 'var(--s-waiting)';
          return `<div class="tile heat" data-tile="${esc(t.tile)}" data-core-seconds="${cs.toFixed(3)}" style="background:${bg}" title="frame ${esc(f.frame)} tile ${esc(t.tile)}: ${esc(fmtCoreSeconds(cs))}"></div>`;
        }).join('')}</div>
      </div>`);
    }
    box.innerHTML = stateCells.join('');
    heat.innerHTML = heatCells.join('');
    if (!panels.has('heatmap')) return;
    $('#heat-min', el).textContent = Number.isFinite(minTile) ? fmtDuration(minTile) : '0';
    $('#heat-max', el).textContent = maxTile ? `${fmtDuration(maxTile)} per tile` : '—';
    renderFrameBars(frames, maxFrame);
  }

  function renderFrameBars(frames, maxFrame) {
    const svg = $('#frame-bars', el);
    const n = frames.length;
    const W = 1000;
    const H = 90;
    if (!maxFrame) { svg.innerHTML = ''; $('#heat-top', el).textContent = 'No core-seconds metered yet.'; return; }
    const bw = Math.min(W / n, 48);
    const bars = frames.map((f, i) => {
      const v = frameCore(f);
      const h = Math.max(v > 0 ? 1.5 : 0, (v / maxFrame) * (H - 14));
      return `<rect x="${(i * bw + bw * 0.08).toFixed(2)}" y="${(H - h).toFixed(2)}" width="${Math.max(0.5, bw * 0.84).toFixed(2)}" height="${h.toFixed(2)}" fill="${heatColor(v / maxFrame)}" data-frame="${esc(f.frame)}"><title>frame ${esc(f.frame)}: ${esc(fmtCoreSeconds(v))}</title></rect>`;
    });
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.innerHTML = `<line x1="0" x2="${W}" y1="${H - 0.5}" y2="${H - 0.5}" stroke="#3a404a"/>${bars.join('')}`;
    // Where does the cost lie? The dearest frame and tile, against the median.
    const costs = frames.map(frameCore).filter((v) => v > 0);
    const mean = costs.length ? costs.reduce((a, b) => a + b, 0) / costs.length : 0;
    const dearest = frames.reduce((a, f) => (frameCore(f) > frameCore(a) ? f : a), frames[0]);
    let tileMax = null;
    for (const f of frames) for (const t of f.tiles || []) if (!tileMax || (t.core_seconds || 0) > tileMax.cs) tileMax = { f: f.frame, t: t.tile, cs: t.core_seconds || 0 };
    const total = frames.reduce((a, f) => a + frameCore(f), 0);
    $('#heat-top', el).innerHTML = [
      `total ${esc(fmtCoreSeconds(total))}`,
      `dearest frame <b>${esc(dearest.frame)}</b>: ${esc(fmtCoreSeconds(frameCore(dearest)))}${mean && frames.length > 1 ? ` (${(frameCore(dearest) / mean).toFixed(2)}× the mean)` : ''}`,
      tileMax && tileMax.cs ? `dearest tile: frame ${esc(tileMax.f)} tile ${esc(tileMax.t)}, ${esc(fmtCoreSeconds(tileMax.cs))}` : '',
    ].filter(Boolean).join(' · ');
  }

  // ── last finished frame, preview video ─────────────────────────────────
  async function showImage(path, caption) {
    try {
      const url = await blobUrl(path);
      if (!alive) { URL.revokeObjectURL(url); return; }
      const img = new Image();
      img.alt = caption;
      img.id = 'latest-img';
      img.onload = () => {
        const box = $('#latest', el);
        box.innerHTML = '';
        box.append(img);
        const cap = document.createElement('span');
        cap.className = 'cap';
        cap.textContent = `${caption} · ${img.naturalWidth}×${img.naturalHeight} · ${new Date().toLocaleTimeString([], { hour12: false })}`;
        box.append(cap);
        if (latest.url) URL.revokeObjectURL(latest.url);
        latest.url = url;
      };
      img.src = url;
      img.onclick = () => window.open(url, '_blank');
      img.style.cursor = 'zoom-in';
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        $('#latest', el).innerHTML = '<span class="muted">no finished frame yet</span>';
      }
    }
  }

  function refreshLatest(force = false) {
    if (latest.pinned || !panels.has('latest')) return;
    const done = (job.frames || []).filter((f) => f.state === 'done');
    const key = `${done.length}:${done.map((f) => f.frame).join(',')}`;
    if (!force && key === latest.doneKey) return;
    latest.doneKey = key;
    if (!done.length && !FINAL.has(job.state)) return;
    const last = done[done.length - 1];
    $('#latest-title', el).textContent = 'Last finished frame';
    showImage(`/api/jobs/${encodeURIComponent(id)}/latest.png?v=${encodeURIComponent(key)}`, last ? `frame ${last.frame}` : 'latest');
  }

  async function refreshVideo() {
    if (!panels.has('video')) return;
    const outputs = job.outputs || {};
    const src = findStrings(outputs, (s) => /\.(mp4|webm)(\?|$)/i.test(s))[0];
    if (!src || src === video.src) return;
    video.src = src;
    const path = src.startsWith('/') || src.startsWith('http') ? src : `/api/jobs/${encodeURIComponent(id)}/files/${src}`;
    try {
      const url = await blobUrl(path);
      if (!alive) return;
      if (video.url) URL.revokeObjectURL(video.url);
      video.url = url;
      $('#video', el).innerHTML = `<video id="preview-video" src="${url}" controls loop muted autoplay playsinline></video>`;
      $('#video-panel', el).hidden = false;
    } catch { video.src = ''; }
  }

  $('#frames-grid', el).addEventListener('click', (e) => {
    const fr = e.target.closest('.frame[data-frame]');
    if (!fr || !job) return;
    const f = (job.frames || []).find((x) => String(x.frame) === fr.dataset.frame);
    if (!f || !f.preview_url) return;
    latest.pinned = f.frame;
    $('#latest-title', el).textContent = `Frame ${f.frame}`;
    $('#latest-unpin', el).hidden = false;
    showImage(f.preview_url, `frame ${f.frame}`);
  });
  $('#latest-unpin', el).addEventListener('click', () => {
    latest.pinned = null;
    $('#latest-unpin', el).hidden = true;
    refreshLatest(true);
  });

  // ── usage, failures, spec ──────────────────────────────────────────────
  function renderUsage() {
    const u = job.usage || {};
    const rows = Object.entries(u).filter(([, v]) => typeof v === 'number');
    if (!rows.length) { $('#usage', el).innerHTML = '<div class="muted">No usage metered yet.</div>'; return; }
    const total = rows.reduce((a, [, v]) => a + v, 0);
    const color = { ok: 'var(--s-done)', failed: 'var(--s-failed)', timeout: '#e08a4b', lost: '#b0705c', cancelled: 'var(--s-cancelled)', running: 'var(--s-running)' };
    const label = (k) => k.replace(/_core_seconds$/, '');
    $('#usage', el).innerHTML = `<div class="bar" style="height:8px;margin:2px 0 10px">${rows.map(([k, v]) => `<span style="width:${((v / (total || 1)) * 100).toFixed(2)}%;background:${color[label(k)] || 'var(--faint)'}" title="${esc(label(k))}"></span>`).join('')}</div>
      <div class="table-wrap"><table class="t"><thead><tr><th>Attempts</th><th class="num">Core-seconds</th><th class="num">Core-hours</th><th class="num">Share</th></tr></thead><tbody>
      ${rows.map(([k, v]) => `<tr data-outcome="${esc(label(k))}"><td><span class="swatch" style="background:${color[label(k)] || 'var(--faint)'}"></span>${esc(label(k) === 'ok' ? 'successful' : label(k))}</td><td class="num">${fmtNum(v, 1)}</td><td class="num">${fmtCoreHours(v / 3600)}</td><td class="num">${total ? ((v / total) * 100).toFixed(0) : 0}%</td></tr>`).join('')}
      <tr><td><b>total</b></td><td class="num"><b>${fmtNum(total, 1)}</b></td><td class="num"><b>${fmtCoreHours(total / 3600)}</b></td><td></td></tr></tbody></table></div>`;
  }
  function renderFailures() {
    const f = job.failures;
    const list = Array.isArray(f) ? f : f && typeof f === 'object' ? Object.entries(f).map(([k, v]) => ({ task: k, ...(typeof v === 'object' ? v : { message: v }) })) : [];
    $('#failure-count', el).textContent = list.length ? `${list.length}` : '';
    if (!list.length) { $('#failures', el).innerHTML = '<div class="muted">No failed attempts.</div>'; return; }
    $('#failures', el).innerHTML = `<div class="table-wrap"><table class="t"><thead><tr><th>Task</th><th>Outcome</th><th>Node</th><th>When</th><th>Message</th></tr></thead><tbody>${list.slice(-50).reverse().map((x) => `
      <tr><td class="mono">${esc(x.task_key ?? x.task ?? x.key ?? '')}${x.number || x.attempt ? ` <span class="faint">#${esc(x.number ?? x.attempt)}</span>` : ''}</td>
      <td>${badge(x.outcome === 'ok' ? 'done' : x.outcome === 'cancelled' ? 'cancelled' : 'failed').replace(/>(\w+)<\/span>$/, `>${esc(x.outcome ?? 'failed')}</span>`)}</td>
      <td class="mono">${esc(x.node ?? '')}</td><td class="nowrap">${esc(fmtTime(x.ended_at ?? x.at ?? x.started_at))}</td>
      <td class="msg" style="max-width:none;white-space:normal" title="${esc(x.message ?? x.error ?? '')}">${esc(x.message ?? x.error ?? '')}</td></tr>`).join('')}</tbody></table></div>`;
  }
  function renderSpec() {
    $('#spec', el).textContent = JSON.stringify(job.spec, null, 2);
    const outs = Array.isArray(job.outputs) ? job.outputs : [];
    const bytes = outs.reduce((a, o) => a + (o.bytes || 0), 0);
    $('#outputs-count', el).textContent = outs.length ? `${outs.length} files · ${fmtBytes(bytes)}` : '';
    $('#outputs', el).innerHTML = outs.length
      ? outs.map((o) => `<a href="#" class="out" data-url="${esc(o.url)}" data-name="${esc(o.path)}" title="download ${esc(o.path)}"><span class="mono">${esc(o.path)}</span><span class="muted">${esc(fmtBytes(o.bytes))}</span></a>`).join('')
      : `<div class="muted" style="padding:10px 12px">${job.outputs_listed === false
        ? 'The output files cannot be listed right now: the farm’s storage did not answer (see above).'
        : 'No output files yet.'}</div>`;
  }
  $('#outputs', el).addEventListener('click', async (e) => {
    const a = e.target.closest('a.out');
    if (!a) return;
    e.preventDefault();
    try {
      const url = await blobUrl(a.dataset.url);
      const link = document.createElement('a');
      link.href = url;
      link.download = a.dataset.name.split('/').pop();
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      if (err.name !== 'AuthError') ctx.toast(`download failed: ${err.message}`, 'err');
    }
  });

  // ── tasks and logs ─────────────────────────────────────────────────────
  function taskKey(t) { return String(t.key ?? t.task ?? t.id); }
  function renderTasks() {
    const list = $('#task-list', el);
    const counts = {};
    for (const t of tasks) counts[t.state] = (counts[t.state] || 0) + 1;
    const shown = tasksTotal > tasks.length ? `first ${tasks.length} of ${tasksTotal}` : `${tasks.length}`;
    $('#task-count', el).textContent = `${shown} tasks${counts.running ? ` · ${counts.running} running` : ''}${counts.failed ? ` · ${counts.failed} failed` : ''}`;
    const scroll = list.scrollTop;
    // OpenJD jobs: steps × tasks — a heading per step, each task with its parameters,
    // progress and status line (openjd_progress / openjd_status).
    const steps = Boolean(panels?.has('steps'));
    let step = null;
    list.innerHTML = tasks.map((t) => {
      const k = taskKey(t);
      let head = '';
      let text = k;
      if (steps) {
        const [s, ...rest] = k.split('/');
        if (s !== step) { step = s; head = `<div class="step-head">step ${esc(s)}</div>`; }
        text = rest.join('/');
        if (t.state === 'running' && t.progress) text += ` · ${Math.round(t.progress * 100)}%`;
        if (t.status) text += ` · ${t.status}`;
      }
      return `${head}<button type="button" data-task="${esc(k)}" data-state="${esc(t.state)}" class="${k === selectedTask ? 'on' : ''}" title="${esc(t.label || t.kind || '')} · ${esc(t.state)}${t.attempts ? ` · ${t.attempts} attempt(s)` : ''}${t.status ? ` · ${esc(t.status)}` : ''}">
        <span style="overflow:hidden;text-overflow:ellipsis">${esc(text)}</span><span class="st" style="background:${stateColor(t.state)}"></span></button>`;
    }).join('') || '<div class="empty">no tasks</div>';
    list.scrollTop = scroll;
  }

  function stopLog() { if (logCtl) { logCtl.abort(); logCtl = null; } }

  async function showLog(key) {
    stopLog();
    selectedTask = key;
    for (const b of $$('#task-list button', el)) b.classList.toggle('on', b.dataset.task === key);
    const pre = $('#log', el);
    const t = tasks.find((x) => taskKey(x) === key);
    shownState = t ? t.state : '';
    $('#log-title', el).textContent = `${key}${t ? ` · ${t.state}` : ''}`;
    pre.textContent = '';
    const ctl = new AbortController();
    logCtl = ctl;
    const streaming = follow && t && !FINAL.has(t.state);
    const path = `/api/jobs/${encodeURIComponent(id)}/logs?task=${encodeURIComponent(key)}${streaming ? '&follow=1' : ''}`;
    try {
      if (!streaming) {
        const text = await api(path, { as: 'text', signal: ctl.signal });
        if (logCtl !== ctl) return;
        pre.textContent = text || '(empty log — the task has not started or printed nothing)';
        pre.scrollTop = pre.scrollHeight;
        return;
      }
      const res = await api(path, { as: 'response', signal: ctl.signal });
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || logCtl !== ctl) break;
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
        pre.append(dec.decode(value, { stream: true }));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
    } catch (err) {
      if (err.name === 'AbortError' || logCtl !== ctl) return;
      if (err instanceof ApiError && err.status === 404) pre.textContent = '(no log yet for this task)';
      else pre.textContent = `could not load the log: ${err.message}`;
    }
  }

  $('#task-list', el).addEventListener('click', (e) => {
    const b = e.target.closest('button[data-task]');
    if (b) showLog(b.dataset.task);
  });
  $('#log-follow', el).addEventListener('change', (e) => {
    follow = e.target.checked;
    if (selectedTask) showLog(selectedTask);
  });
  $('#log-reload', el).addEventListener('click', () => { if (selectedTask) showLog(selectedTask); });

  // ── loading ────────────────────────────────────────────────────────────
  async function loadTasks() {
    try {
      // the task list is paged (a job may hold 100,000 tasks): the first TASKS_SHOWN, a page
      // at a time, following the X-Next-After cursor
      const base = `/api/jobs/${encodeURIComponent(id)}/tasks?limit=${TASK_PAGE}`;
      let res = await get(base, { as: 'response' });
      let list = await res.json();
      tasksTotal = Number(res.headers.get('X-Total-Count')) || list.length;
      let next = res.headers.get('X-Next-After');
      while (next && list.length < TASKS_SHOWN && alive) {
        res = await get(`${base}&after=${encodeURIComponent(next)}`, { as: 'response' });
        list = list.concat(await res.json());
        next = res.headers.get('X-Next-After');
      }
      if (!alive) return;
      tasks = list;
      renderTasks();
      const current = tasks.find((t) => taskKey(t) === selectedTask);
      if ((!selectedTask || !current) && tasks.length) {
        const pick = tasks.find((t) => t.state === 'running') || tasks.find((t) => t.state === 'failed') || tasks[0];
        showLog(taskKey(pick));
      } else if (current && current.state !== shownState) {
        showLog(selectedTask); // it started or finished since we loaded its log: show the new one
      }
    } catch { /* shown by the job panel */ }
  }

  async function load() {
    try {
      const j = await get(`/api/jobs/${encodeURIComponent(id)}`);
      if (!alive) return;
      job = j;
      compose();
      $('#job-error', el).innerHTML = '';
      renderHead();
      renderFrames();
      renderUsage();
      renderFailures();
      renderSpec();
      refreshLatest();
      refreshVideo();
      if (job.story && panels.has('reel')) story.render(job.story).catch(() => {});
      if (panels.has('deliverable')) deliverable.render(job).catch(() => {});
    } catch (err) {
      if (!alive || err.name === 'AuthError') return;
      if (err instanceof ApiError && err.status === 404) {
        el.innerHTML = `<div class="error-box">Job ${esc(id)} does not exist, or this token's project cannot see it.</div><p><a href="#/jobs">← all jobs</a></p>`;
        alive = false;
        return;
      }
      $('#job-error', el).innerHTML = `<div class="error-box" style="margin-bottom:10px">Could not refresh: ${esc(err.message)}</div>`;
    }
  }
  const reload = throttle(load, 400);
  const reloadTasks = throttle(loadTasks, 1000);

  await load();
  if (!alive) return {};
  loadTasks();
  const poll = setInterval(() => { if (job && !FINAL.has(job.state)) { load(); loadTasks(); } }, 5000);
  const tick = setInterval(() => { if (job && job.state === 'running') renderHead(); }, 1000);

  function concernsUs(evt) {
    const d = evt.data;
    if (!d || typeof d !== 'object') return true;
    const jid = d.job_id ?? d.job ?? (evt.type.startsWith('job') ? d.id : undefined);
    return jid === undefined || String(jid) === String(id);
  }

  return {
    onEvent(evt) {
      if (!concernsUs(evt)) return;
      if (evt.type === 'task' && evt.data?.type === 'progress') return; // the 5 s poll is enough for that
      reload();
      reloadTasks();
    },
    unmount() {
      alive = false;
      stopLog();
      clearInterval(poll);
      clearInterval(tick);
      clearTimeout(confirmTimer);
      if (latest.url) URL.revokeObjectURL(latest.url);
      if (video.url) URL.revokeObjectURL(video.url);
      story.unmount();
      deliverable.unmount();
    },
  };
}

