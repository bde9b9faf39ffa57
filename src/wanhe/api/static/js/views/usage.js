// Usage: core-hours per project over time, budgets (core-hours and GPU-hours) used and left,
// successful vs failed core-hours, GPU-hours beside them wherever the farm metered any.
import { get, qs } from '../api.js';
import { stackedBars } from '../chart.js';
import { $, esc, fmtCoreHours, projectColor, throttle, toMs } from '../util.js';

const PERIODS = [
  ['15m', 'last 15 minutes', 900, 60],
  ['1h', 'last hour', 3600, 60],
  ['6h', 'last 6 hours', 6 * 3600, 600],
  ['24h', 'last 24 hours', 86400, 1800],
  ['7d', 'last 7 days', 7 * 86400, 4 * 3600],
  ['30d', 'last 30 days', 30 * 86400, 86400],
];

const OUTCOMES = [
  ['ok', 'successful', 'var(--s-done)', 'b-ok'],
  ['failed', 'failed', 'var(--s-failed)', 'b-fail'],
  ['timeout', 'timed out', '#e08a4b', 'b-fail'],
  ['lost', 'lost (node or service died)', '#b0705c', 'b-fail'],
  ['cancelled', 'cancelled', 'var(--s-cancelled)', 'b-cancel'],
  ['running', 'running now', 'var(--s-running)', 'b-run'],
];

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0);

/** `/api/usage/timeline` ({bucket, times, series: [{project, core_hours: [], gpu_hours: []}]})
 * -> {project: Map(ms -> h)}, of core-hours or (field 'gpu_hours') GPU-hours. */
export function normalizeTimeline(raw, field = 'core_hours') {
  const out = {};
  const times = raw?.times ?? [];
  for (const s of raw?.series ?? []) {
    const m = (out[s.project] ||= new Map());
    (s[field] ?? []).forEach((h, i) => {
      const ms = toMs(times[i]);
      if (ms != null) m.set(ms, (m.get(ms) || 0) + num(h));
    });
  }
  return out;
}

/** `/api/report` -> {project: {ok, failed, timeout, lost, cancelled, running (core-hours)}}. */
export function normalizeOutcomes(raw) {
  const out = {};
  for (const row of raw?.projects ?? []) {
    const o = {};
    for (const [k] of OUTCOMES) if (row[k]) o[k] = num(row[k]);
    out[row.project] = o;
  }
  return out;
}

/** `/api/report` -> {project: GPU-hours metered in the report's period}. */
export function gpuHoursOfReport(raw) {
  const out = {};
  for (const row of raw?.projects ?? []) out[row.project] = num(row.gpu_hours);
  return out;
}

/** Sum of every point of a normalized timeline, per project: {project: h}. */
function totals(timeline) {
  const out = {};
  for (const [name, m] of Object.entries(timeline)) {
    let h = 0;
    for (const v of m.values()) h += v;
    out[name] = h;
  }
  return out;
}

/** A budget row: used against an optional budget, as a bar and numbers ("unit": core-h, GPU-h). */
function budgetRow(attrs, nameHtml, used, budget, unit) {
  let bar;
  let nums;
  if (budget == null) {
    bar = '<div class="bar"><span class="b-used" style="width:0"></span></div>';
    nums = `${fmtCoreHours(used)} ${unit} used · no budget`;
  } else {
    const frac = budget > 0 ? used / budget : 1;
    bar = `<div class="bar" title="${(frac * 100).toFixed(1)}% of the ${unit} budget"><span class="${frac >= 1 ? 'b-over' : 'b-used'}" style="width:${Math.min(100, frac * 100).toFixed(2)}%"></span></div>`;
    nums = frac >= 1
      ? `<span style="color:#ff8c84">${fmtCoreHours(used)} / ${fmtCoreHours(budget)} ${unit} · budget spent</span>`
      : `${fmtCoreHours(used)} / ${fmtCoreHours(budget)} ${unit} · ${fmtCoreHours(budget - used)} left`;
  }
  return `<div class="budget" ${attrs}><span class="name">${nameHtml}</span>${bar}<span class="nums">${nums}</span></div>`;
}

/** Report -> rows of jobs with their core-hours, when the report lists them. */
function jobsOfReport(raw) {
  const list = raw?.jobs;
  if (!Array.isArray(list)) return [];
  return list.map((j) => ({
    id: j.job_id, name: j.name ?? '', project: j.project ?? '', h: num(j.total),
    failed: num(j.failed) + num(j.timeout) + num(j.lost), cancelled: num(j.cancelled),
    gpu: num(j.gpu_hours),
  }));
}

export async function mount(el, ctx) {
  const admin = !!ctx.me?.admin;
  let period = ctx.query.get('period') || '24h';
  let project = ctx.query.get('project') || '';
  let alive = true;
  let data = null;

  el.innerHTML = `
    <div class="page-head">
      <h1>Usage</h1><span class="muted" id="usage-sum"></span><span class="spacer"></span>
      <div class="toolbar">
        <select id="usage-project" aria-label="project" ${admin ? '' : 'hidden'}><option value="">all projects</option></select>
        <select id="usage-period" aria-label="period">${PERIODS.map(([k, label]) => `<option value="${k}" ${k === period ? 'selected' : ''}>${label}</option>`).join('')}</select>
      </div>
    </div>
    <section class="panel" id="timeline-panel">
      <div class="panel-head"><h2>Core-hours per project over time</h2><span class="spacer"></span><div class="legend" id="timeline-legend"></div></div>
      <div class="panel-body"><svg class="chart" id="timeline" height="250" role="img" aria-label="core-hours per project over time"></svg></div>
    </section>
    <div class="grid-2" style="margin-top:12px">
      <section class="panel" id="budget-panel">
        <div class="panel-head"><h2>Budgets</h2><span class="spacer"></span><span class="muted" style="font-size:12px" id="budgets-unit">core-hours used · left</span></div>
        <div class="panel-body" id="budgets"></div>
      </section>
      <section class="panel" id="outcome-panel">
        <div class="panel-head"><h2>Successful vs failed</h2><span class="spacer"></span><div class="legend">${OUTCOMES.filter((o) => !['timeout', 'lost', 'running'].includes(o[0])).map(([, l, c]) => `<span><i style="background:${c}"></i>${l.split(' ')[0]}</span>`).join('')}</div></div>
        <div class="panel-body" id="outcomes"></div>
      </section>
    </div>
    <section class="panel" id="jobs-usage-panel" style="margin-top:12px" hidden>
      <div class="panel-head"><h2>Dearest jobs</h2></div>
      <div class="table-wrap" id="jobs-usage"></div>
    </section>`;

  const fmtX = (t, long) => {
    const d = new Date(t);
    const p = PERIODS.find((x) => x[0] === period);
    const opts = p[2] > 2 * 86400
      ? { month: 'short', day: 'numeric', ...(long ? { hour: '2-digit', minute: '2-digit' } : {}) }
      : { hour: '2-digit', minute: '2-digit' };
    return d.toLocaleString([], { ...opts, hour12: false });
  };

  function render() {
    if (!data) return;
    const { timeline, gpuTimeline, projects, report } = data;
    const names = Array.from(new Set([...projects.map((p) => p.name), ...Object.keys(timeline)])).sort();
    const p = PERIODS.find((x) => x[0] === period);
    const bucketMs = p[3] * 1000;
    const now = Date.now();
    const since = Math.floor((now - p[2] * 1000) / bucketMs) * bucketMs;
    const buckets = [];
    for (let t = since; t <= now; t += bucketMs) buckets.push(t);
    const series = Object.entries(timeline)
      .filter(([name]) => !project || name === project)
      .map(([name, m]) => {
        const values = buckets.map(() => 0);
        for (const [t, h] of m) {
          const i = Math.floor((t - since) / bucketMs);
          if (i >= 0 && i < values.length) values[i] += h;
        }
        return { name, color: projectColor(name, names), values };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    const total = series.reduce((a, s) => a + s.values.reduce((x, y) => x + y, 0), 0);
    const gpuInPeriod = totals(gpuTimeline);
    const gpuTotal = Object.entries(gpuInPeriod)
      .filter(([name]) => !project || name === project)
      .reduce((a, [, h]) => a + h, 0);
    // GPU figures appear once the farm has metered GPU-hours or a project has a GPU budget.
    const gpu = gpuTotal > 0 || projects.some((x) => x.budget_gpu_hours != null || num(x.used_gpu_hours) > 0);
    $('#usage-sum', el).textContent = `${fmtCoreHours(total)} core-hours${gpu ? ` · ${fmtCoreHours(gpuTotal)} GPU-hours` : ''} in the ${p[1]}`;
    $('#timeline-legend', el).innerHTML = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join('');
    stackedBars($('#timeline', el), {
      buckets, series, bucketMs, fmtX, yLabel: 'core-hours', fmtY: (v) => fmtCoreHours(v),
    });

    // Budgets: core-hours, and beside them GPU-hours for a project that used any or has a GPU budget.
    const shown = projects.filter((x) => !project || x.name === project);
    $('#budgets-unit', el).textContent = gpu ? 'core-hours · GPU-hours used · left' : 'core-hours used · left';
    $('#budgets', el).innerHTML = shown.length ? shown.map((x) => {
      const swatch = `<span class="swatch" style="background:${projectColor(x.name, names)}"></span>`;
      const core = budgetRow(
        `data-project="${esc(x.name)}"`, `${swatch}${esc(x.name)}`, num(x.used_core_hours),
        x.budget_core_hours == null ? null : num(x.budget_core_hours), 'core-h',
      );
      const gpuBudget = x.budget_gpu_hours == null ? null : num(x.budget_gpu_hours);
      const gpuUsed = num(x.used_gpu_hours);
      if (gpuBudget == null && !(gpuUsed > 0)) return core;
      return core + budgetRow(
        `data-gpu-project="${esc(x.name)}"`, `${swatch}${esc(x.name)} <span class="faint">GPU</span>`,
        gpuUsed, gpuBudget, 'GPU-h',
      );
    }).join('') : '<div class="muted">No projects.</div>';

    // Outcomes.
    const outcomes = normalizeOutcomes(report);
    const gpuOfProject = gpuHoursOfReport(report);
    const rows = Object.entries(outcomes).filter(([name]) => !project || name === project || name === 'all').sort(([a], [b]) => a.localeCompare(b));
    $('#outcomes', el).innerHTML = rows.length ? rows.map(([name, o]) => {
      const tot = Object.values(o).reduce((a, b) => a + b, 0);
      const bad = tot - (o.ok || 0) - (o.running || 0);
      const segs = OUTCOMES.filter(([k]) => o[k]).map(([k, label, color]) => `<span style="width:${((o[k] / (tot || 1)) * 100).toFixed(2)}%;background:${color}" title="${label}: ${fmtCoreHours(o[k])} core-h"></span>`).join('');
      return `<div class="budget" data-project="${esc(name)}"><span class="name">${esc(name)}</span><div class="bar">${segs}</div><span class="nums">${fmtCoreHours(o.ok || 0)} ok · <span style="color:${bad ? '#ff8c84' : 'inherit'}">${fmtCoreHours(bad)} failed/cancelled</span>${tot && bad ? ` (${((bad / tot) * 100).toFixed(0)}%)` : ''}${gpu ? ` · ${fmtCoreHours(gpuOfProject[name] || 0)} GPU-h` : ''}</span></div>`;
    }).join('') : '<div class="muted">No metered attempts in this period.</div>';

    const jobs = jobsOfReport(report).filter((j) => !project || j.project === project).sort((a, b) => b.h - a.h).slice(0, 12);
    $('#jobs-usage-panel', el).hidden = !jobs.length;
    $('#jobs-usage', el).innerHTML = `<table class="t"><thead><tr><th>Job</th><th>Project</th><th class="num">Core-h</th><th class="num">Failed core-h</th><th class="num">Cancelled core-h</th>${gpu ? '<th class="num">GPU-h</th>' : ''}</tr></thead><tbody>${jobs.map((j) => `<tr><td><a href="#/jobs/${encodeURIComponent(j.id)}">${esc(j.name || `job ${j.id}`)}</a> <span class="faint mono">#${esc(j.id)}</span></td><td>${esc(j.project)}</td><td class="num">${fmtCoreHours(j.h)}</td><td class="num">${fmtCoreHours(j.failed)}</td><td class="num">${fmtCoreHours(j.cancelled)}</td>${gpu ? `<td class="num">${fmtCoreHours(j.gpu)}</td>` : ''}</tr>`).join('')}</tbody></table>`;
  }

  async function load() {
    const p = PERIODS.find((x) => x[0] === period);
    const sinceS = Math.floor(Date.now() / 1000 - p[2]);
    try {
      const [tl, projects, report, jobList] = await Promise.all([
        get(`/api/usage/timeline${qs({ project, bucket: p[3], since: sinceS })}`),
        get('/api/projects').catch(() => []),
        get(`/api/report${qs({ project, since: sinceS })}`).catch(() => null),
        get(`/api/jobs${qs({ project })}`).catch(() => []),
      ]);
      for (const j of report?.jobs ?? []) {
        const found = (jobList || []).find((x) => x.id === j.job_id);
        if (found) j.name = found.name;
      }
      if (!alive) return;
      const plist = Array.isArray(projects) ? projects : projects?.projects ?? [];
      data = {
        timeline: normalizeTimeline(tl), gpuTimeline: normalizeTimeline(tl, 'gpu_hours'),
        projects: plist, report,
      };
      if (admin) {
        const sel = $('#usage-project', el);
        if (sel.options.length <= 1) {
          sel.innerHTML = '<option value="">all projects</option>' + plist.map((x) => `<option value="${esc(x.name)}" ${x.name === project ? 'selected' : ''}>${esc(x.name)}</option>`).join('');
        }
      }
      render();
    } catch (err) {
      if (!alive || err.name === 'AuthError') return;
      $('#timeline', el).innerHTML = '';
      $('#budgets', el).innerHTML = `<div class="error-box">Could not load usage: ${esc(err.message)}</div>`;
    }
  }
  const reload = throttle(load, 3000);

  $('#usage-period', el).addEventListener('change', (e) => {
    period = e.target.value;
    ctx.setQuery({ ...(project ? { project } : {}), period });
    load();
  });
  $('#usage-project', el).addEventListener('change', (e) => {
    project = e.target.value;
    ctx.setQuery({ ...(project ? { project } : {}), period });
    load();
  });
  const onResize = throttle(render, 200);
  window.addEventListener('resize', onResize);
  await load();
  const poll = setInterval(load, 30000);
  return {
    onEvent(evt) { if (/job|attempt|task|usage/.test(evt.type) || evt.type === 'message') reload(); },
    unmount() { alive = false; clearInterval(poll); window.removeEventListener('resize', onResize); },
  };
}
