// Jobs: every job this token may see, live; filter by state and project; sort by any column.
import { get, qs } from '../api.js';
import {
  $, $$, JOB_STATES, badge, esc, fmtCoreHours, fmtDateTime, fmtDuration, fmtTime,
  progressBar, throttle, toMs,
} from '../util.js';

const STATE_ORDER = { running: 0, queued: 1, paused: 2, failed: 3, done: 4, cancelled: 5 };

const COLUMNS = [
  { key: 'id', label: 'ID', cls: 'c-id num', get: (j) => Number(j.id) || j.id },
  { key: 'name', label: 'Name', cls: 'c-name name', get: (j) => String(j.name || '').toLowerCase() },
  { key: 'state', label: 'State', cls: 'c-state', get: (j) => STATE_ORDER[j.state] ?? 9 },
  { key: 'progress', label: 'Progress', cls: 'c-progress', get: (j) => j.progress ?? 0 },
  { key: 'priority', label: 'Prio', cls: 'c-priority num', get: (j) => j.priority ?? 0, title: 'priority 0–100: higher runs first' },
  { key: 'project', label: 'Project', cls: 'c-project', get: (j) => j.project || '' },
  { key: 'submitter', label: 'Submitter', cls: 'c-submitter', get: (j) => j.submitter || '' },
  { key: 'created_at', label: 'Submitted', cls: 'c-created num', get: (j) => toMs(j.created_at) ?? 0 },
  { key: 'runtime', label: 'Run time', cls: 'c-runtime num', get: runtime },
  { key: 'core_hours', label: 'Core-h', cls: 'c-corehours num', get: (j) => j.core_hours ?? 0, title: 'core-hours metered so far (all attempts)' },
  { key: 'eta_s', label: 'ETA', cls: 'c-eta num', get: (j) => (j.eta_s == null ? Infinity : j.eta_s) },
  { key: 'message', label: 'Message', cls: 'c-msg msg', get: (j) => j.message || '' },
];

function runtime(j) {
  const s = toMs(j.started_at);
  if (s == null) return null;
  const e = toMs(j.finished_at) ?? Date.now();
  return (e - s) / 1000;
}

function cell(col, j) {
  const label = `data-label="${esc(col.label)}"`;
  switch (col.key) {
    case 'id': return `<td class="${col.cls}">${esc(j.id)}</td>`;
    case 'name': return `<td class="${col.cls}" title="${esc(j.name)}"><div class="clip"><a href="#/jobs/${encodeURIComponent(j.id)}">${esc(j.name || `job ${j.id}`)}</a> <span class="faint mono id-suffix">#${esc(j.id)}</span> <span class="faint job-kind">${esc(j.kind || '')}</span></div></td>`;
    case 'state': return `<td class="${col.cls}" ${label}>${badge(j.state)}</td>`;
    case 'progress': return `<td class="${col.cls}">${progressBar(j.progress, j.tasks)}</td>`;
    case 'priority': return `<td class="${col.cls}" ${label}>${esc(j.priority ?? '')}</td>`;
    case 'project': return `<td class="${col.cls}" ${label}>${esc(j.project ?? '')}</td>`;
    case 'submitter': return `<td class="${col.cls}" ${label} title="${esc(j.submitter)}"><div class="clip">${esc(j.submitter || '—')}</div></td>`;
    case 'created_at': return `<td class="${col.cls}" ${label} title="${esc(fmtDateTime(j.created_at))}">${esc(fmtTime(j.created_at))}</td>`;
    case 'runtime': return `<td class="${col.cls}" ${label}>${esc(fmtDuration(runtime(j)))}</td>`;
    case 'core_hours': return `<td class="${col.cls}" ${label}>${esc(fmtCoreHours(j.core_hours))}</td>`;
    case 'eta_s': {
      const eta = ['running', 'queued'].includes(j.state) && j.eta_s != null ? fmtDuration(j.eta_s) : '—';
      return `<td class="${col.cls}${eta === '—' ? ' none' : ''}" ${label}>${esc(eta)}</td>`;
    }
    case 'message': return `<td class="${col.cls}" title="${esc(j.message)}"><div class="clip">${esc(j.message || '')}</div></td>`;
    default: return '<td></td>';
  }
}

export async function mount(el, ctx) {
  const admin = !!ctx.me?.admin;
  const view = {
    state: ctx.query.get('state') || '',
    project: ctx.query.get('project') || '',
    text: ctx.query.get('q') || '',
    sort: ctx.query.get('sort') || 'created_at',
    dir: ctx.query.get('dir') || 'desc',
  };
  let jobs = [];
  let projects = [];
  let alive = true;
  let loadedOnce = false;

  el.innerHTML = `
    <div class="page-head">
      <h1>Jobs</h1>
      <span class="muted" id="jobs-count"></span>
      <span class="spacer"></span>
      <div class="toolbar">
        <div class="chips" id="state-chips" role="group" aria-label="filter by state"></div>
        <select id="project-filter" aria-label="filter by project" ${admin ? '' : 'hidden'}><option value="">all projects</option></select>
        <input id="text-filter" type="search" placeholder="name, submitter…" size="16" aria-label="filter by name or submitter">
      </div>
    </div>
    <div class="panel">
      <div class="table-wrap">
        <table class="t cards" id="jobs-table">
          <thead><tr>${COLUMNS.map((c) => `<th class="sortable ${c.cls.includes('num') ? 'num' : ''}" data-sort="${c.key}" title="${esc(c.title || `sort by ${c.label.toLowerCase()}`)}">${esc(c.label)}<span class="arrow"></span></th>`).join('')}</tr></thead>
          <tbody id="jobs-body"><tr><td colspan="${COLUMNS.length}" class="empty">Loading jobs…</td></tr></tbody>
        </table>
      </div>
    </div>`;

  const body = $('#jobs-body', el);
  const projectSel = $('#project-filter', el);
  const textInput = $('#text-filter', el);
  textInput.value = view.text;

  function saveQuery() {
    const q = {};
    if (view.state) q.state = view.state;
    if (view.project) q.project = view.project;
    if (view.text) q.q = view.text;
    if (view.sort !== 'created_at' || view.dir !== 'desc') { q.sort = view.sort; q.dir = view.dir; }
    ctx.setQuery(q);
  }

  function renderChips() {
    const counts = {};
    for (const j of jobs) counts[j.state] = (counts[j.state] || 0) + 1;
    const chip = (value, label, n) => `<button type="button" class="chip ${view.state === value ? 'on' : ''}" data-state="${value}">${label}<span class="n">${n}</span></button>`;
    $('#state-chips', el).innerHTML = chip('', 'all', jobs.length)
      + JOB_STATES.map((s) => chip(s, s, counts[s] || 0)).join('');
  }

  function renderProjects() {
    if (!admin) return;
    const names = new Set(projects.map((p) => p.name));
    for (const j of jobs) if (j.project) names.add(j.project);
    if (view.project) names.add(view.project);
    const sorted = [...names].sort();
    projectSel.innerHTML = '<option value="">all projects</option>'
      + sorted.map((n) => `<option value="${esc(n)}" ${n === view.project ? 'selected' : ''}>${esc(n)}</option>`).join('');
  }

  function visible() {
    const t = view.text.trim().toLowerCase();
    const col = COLUMNS.find((c) => c.key === view.sort) || COLUMNS[7];
    const sign = view.dir === 'asc' ? 1 : -1;
    return jobs
      .filter((j) => !view.state || j.state === view.state)
      .filter((j) => !t || `${j.name} ${j.kind} ${j.submitter} ${j.id} ${j.project}`.toLowerCase().includes(t))
      .map((j) => [col.get(j), j])
      .sort((a, b) => {
        const [x, y] = [a[0], b[0]];
        if (x === y) return (Number(b[1].id) || 0) - (Number(a[1].id) || 0);
        if (x == null) return 1;
        if (y == null) return -1;
        return (x < y ? -1 : 1) * sign;
      })
      .map(([, j]) => j);
  }

  function render() {
    if (!alive) return;
    renderChips();
    for (const th of $$('th[data-sort]', el)) {
      th.querySelector('.arrow').textContent = th.dataset.sort === view.sort ? (view.dir === 'asc' ? '▲' : '▼') : '';
      th.setAttribute('aria-sort', th.dataset.sort === view.sort ? (view.dir === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    const rows = visible();
    const running = jobs.filter((j) => j.state === 'running').length;
    const queued = jobs.filter((j) => j.state === 'queued').length;
    $('#jobs-count', el).textContent = `${rows.length} shown · ${running} running · ${queued} queued`;
    if (!rows.length) {
      const why = jobs.length ? 'No job matches these filters.' : (admin
        ? 'No jobs yet. Submit one with  wanhe submit scene.blend --project NAME'
        : `No jobs in project ${ctx.me?.project ?? ''} yet. Submit one with  wanhe submit scene.blend`);
      body.innerHTML = `<tr><td colspan="${COLUMNS.length}" class="empty">${esc(why)}</td></tr>`;
      return;
    }
    body.innerHTML = rows.map((j) => `<tr class="clickable" data-job-id="${esc(j.id)}" data-state="${esc(j.state)}">${COLUMNS.map((c) => cell(c, j)).join('')}</tr>`).join('');
  }

  async function load() {
    try {
      const list = await get(`/api/jobs${qs({ project: view.project })}`);
      if (!alive) return;
      jobs = Array.isArray(list) ? list : (list?.jobs ?? []);
      if (!loadedOnce && admin) {
        loadedOnce = true;
        try { projects = await get('/api/projects'); } catch { projects = []; }
        if (!Array.isArray(projects)) projects = projects?.projects ?? [];
        renderProjects();
      }
      render();
    } catch (err) {
      if (!alive || err.name === 'AuthError') return;
      body.innerHTML = `<tr><td colspan="${COLUMNS.length}"><div class="error-box">Could not load jobs: ${esc(err.message)}</div></td></tr>`;
    }
  }
  const reload = throttle(load, 500);
  const renderSoon = throttle(render, 250);

  $('#state-chips', el).addEventListener('click', (e) => {
    const b = e.target.closest('.chip');
    if (!b) return;
    view.state = b.dataset.state;
    saveQuery();
    render();
  });
  projectSel.addEventListener('change', () => {
    view.project = projectSel.value;
    saveQuery();
    load();
  });
  textInput.addEventListener('input', () => { view.text = textInput.value; saveQuery(); render(); });
  $('thead', el).addEventListener('click', (e) => {
    const th = e.target.closest('th[data-sort]');
    if (!th) return;
    const key = th.dataset.sort;
    if (view.sort === key) view.dir = view.dir === 'asc' ? 'desc' : 'asc';
    else { view.sort = key; view.dir = ['name', 'project', 'submitter', 'state', 'eta_s'].includes(key) ? 'asc' : 'desc'; }
    saveQuery();
    render();
  });
  body.addEventListener('click', (e) => {
    if (e.target.closest('a')) return;
    const tr = e.target.closest('tr[data-job-id]');
    if (tr) ctx.navigate(`#/jobs/${encodeURIComponent(tr.dataset.jobId)}`);
  });

  await load();
  // Live: events trigger a reload; a slow poll covers a dropped event stream, and the tick keeps times fresh.
  const poll = setInterval(load, 10000);
  const tick = setInterval(() => { if (jobs.some((j) => j.state === 'running')) render(); }, 2000);

  return {
    onEvent(evt) {
      // `job` events carry the job's fresh summary: patch it in place; anything else, reload.
      if (evt.type === 'job' && evt.data && evt.data.id != null) {
        const i = jobs.findIndex((j) => String(j.id) === String(evt.data.id));
        if (i >= 0) { jobs[i] = { ...jobs[i], ...evt.data }; renderSoon(); return; }
        if (view.project && evt.data.project !== view.project) return;
        reload();
      }
    },
    unmount() { alive = false; clearInterval(poll); clearInterval(tick); },
  };
}

