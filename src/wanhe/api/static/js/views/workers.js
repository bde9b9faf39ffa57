// Workers: the Ray nodes (cores, memory, GPUs, alive), what each runs now, and how loaded it is.
import { get } from '../api.js';
import { $, esc, fmtBytes, fmtNum, progressBar, throttle } from '../util.js';

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0);

function nodeKey(n) { return String(n.node_id ?? n.id ?? n.node ?? n.name ?? n.address ?? n.host ?? ''); }
function nodeName(n) { return n.hostname ?? n.name ?? n.address ?? n.node_ip ?? n.host ?? nodeKey(n).slice(0, 12); }
const isBusy = (s) => !!(s.task || s.task_key || s.job_id != null || s.state === 'running');

function slotNode(s) { return String(s.node_id ?? s.node ?? s.host ?? ''); }

/** Does worker slot `s` run on node `n`? Slots name their node "hostname:<first 8 of the node id>". */
function onNode(s, n) {
  const k = slotNode(s);
  const id = nodeKey(n);
  if (!k) return false;
  if (k === id || k === String(n.address ?? '')) return true;
  const tail = k.includes(':') ? k.split(':').pop() : '';
  return tail.length >= 6 && id.startsWith(tail);
}
function hostOf(slots, n) {
  const s = slots.find((x) => onNode(x, n) && String(x.node).includes(':'));
  return s ? String(s.node).split(':')[0] : null;
}

function meter(label, used, total, fmt, extra = '') {
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const color = frac > 0.9 ? 'var(--accent)' : 'var(--s-running)';
  return `<div class="meter"><span class="k">${label}</span><div class="bar"><span style="width:${(frac * 100).toFixed(1)}%;background:${color}"></span></div><span class="nums">${total > 0 ? `${fmt(used)} / ${fmt(total)}` : '—'}${extra}</span></div>`;
}

export async function mount(el, ctx) {
  let alive = true;
  let names = new Map(); // job id -> name, for the jobs running now
  el.innerHTML = `
    <div class="page-head"><h1>Workers</h1><span class="muted" id="workers-sum"></span><span class="spacer"></span>
      <span class="muted" style="font-size:12px" id="workers-updated"></span></div>
    <div id="workers-error"></div>
    <div class="summary" id="workers-summary"></div>
    <div class="nodes" id="nodes"><div class="empty">Loading…</div></div>
    <section class="panel" style="margin-top:12px" id="slots-panel">
      <div class="panel-head"><h2>Running now</h2><span class="spacer"></span><span class="muted" id="slots-count" style="font-size:12px"></span></div>
      <div class="table-wrap" id="slots"></div>
    </section>`;

  function render(raw) {
    const nodes = (Array.isArray(raw) ? raw : raw?.nodes ?? []).filter((n) => !n.error);
    const nodeError = (raw?.nodes ?? []).find((n) => n.error)?.error || raw?.dispatcher_error || (raw && raw.dispatcher === false ? 'the dispatcher is not running in this service' : '');
    const slots = raw?.slots ?? raw?.workers ?? raw?.running ?? [];
    const busy = slots.filter(isBusy);
    $('#workers-error', el).innerHTML = nodeError ? `<div class="error-box" style="margin-bottom:12px">${esc(nodeError)}</div>` : '';
    const aliveNodes = nodes.filter((n) => n.alive !== false && n.state !== 'DEAD');
    const totalCpu = aliveNodes.reduce((a, n) => a + num(n.cpus ?? n.resources?.CPU), 0);
    const usedCpu = aliveNodes.reduce((a, n) => a + usedOf(n, 'cpus', 'CPU'), 0)
      || busy.reduce((a, s) => a + num(s.cpus ?? 1), 0);
    const totalGpu = aliveNodes.reduce((a, n) => a + num(n.gpus ?? n.resources?.GPU), 0);
    const totalMem = aliveNodes.reduce((a, n) => a + num(n.memory ?? n.resources?.memory), 0);
    const load = totalCpu ? usedCpu / totalCpu : 0;
    $('#workers-sum', el).textContent = `${aliveNodes.length} of ${nodes.length} nodes alive`;
    $('#workers-updated', el).textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    const cells = [
      ['Nodes', `${aliveNodes.length}${nodes.length !== aliveNodes.length ? ` <small class="muted">/ ${nodes.length}</small>` : ''}`],
      ['Cores', fmtNum(totalCpu, totalCpu % 1 ? 1 : 0)],
      ['Cores busy', `${fmtNum(usedCpu, usedCpu % 1 ? 1 : 0)} <small class="muted">${(load * 100).toFixed(0)}%</small>`],
      ['Memory', fmtBytes(totalMem)],
      ['GPUs', fmtNum(totalGpu)],
      ['Worker slots busy', `${busy.length} <small class="muted">/ ${slots.length}</small>`],
    ];
    $('#workers-summary', el).innerHTML = cells.map(([k, v]) => `<div><div class="k">${k}</div><div class="v">${v}</div></div>`).join('');

    $('#nodes', el).innerHTML = nodes.length ? nodes.map((n) => {
      const key = nodeKey(n);
      const isAlive = n.alive !== false && n.state !== 'DEAD';
      const mySlots = slots.filter((x) => onNode(x, n));
      const mine = mySlots.filter(isBusy);
      const host = hostOf(slots, n);
      const cpus = num(n.cpus ?? n.resources?.CPU);
      const ucpu = usedOf(n, 'cpus', 'CPU') || mine.reduce((a, s) => a + num(s.cpus ?? 1), 0);
      const mem = num(n.memory ?? n.resources?.memory);
      const umem = usedOf(n, 'memory', 'memory');
      const gpus = num(n.gpus ?? n.resources?.GPU);
      const ugpu = usedOf(n, 'gpus', 'GPU');
      const sysLoad = n.load ?? n.cpu_percent;
      return `<section class="panel node ${isAlive ? '' : 'dead'}" data-node="${esc(key)}">
        <div class="panel-head"><span class="badge ${isAlive ? 's-done' : 's-failed'}">${isAlive ? 'alive' : 'dead'}</span>
          <b class="mono" title="node ${esc(key)}">${esc(host ?? nodeName(n))}</b>${host ? `<span class="faint mono">${esc(nodeName(n))}</span>` : ''}${n.is_head || n.head ? '<span class="faint">head</span>' : ''}<span class="spacer"></span>
          <span class="muted" style="font-size:12px">${mine.length} / ${mySlots.length} slots busy</span></div>
        <div class="panel-body">
          ${meter('cores', ucpu, cpus, (v) => fmtNum(v, v % 1 ? 1 : 0))}
              ${umem ? meter('memory', umem, mem, fmtBytes) : `<div class="meter"><span class="k">memory</span><span>${esc(fmtBytes(mem))}</span><span></span></div>`}
          ${gpus ? meter('GPUs', ugpu, gpus, (v) => fmtNum(v, v % 1 ? 1 : 0)) : '<div class="meter"><span class="k">GPUs</span><span class="faint">none</span><span></span></div>'}
          ${sysLoad != null ? `<div class="meter"><span class="k">load</span><span class="muted">${esc(typeof sysLoad === 'number' ? sysLoad.toFixed(2) : sysLoad)}</span><span></span></div>` : ''}
          <div class="slot-list">${mySlots.length ? mySlots.map(slotRow).join('') : '<div class="slot"><span class="st"></span><span class="faint">no worker slots on this node</span><span></span></div>'}</div>
        </div></section>`;
    }).join('') : '<div class="empty">No Ray nodes reported. Is the dispatcher connected to a cluster?</div>';

    $('#slots-count', el).textContent = `${busy.length} task(s)`;
    $('#slots', el).innerHTML = busy.length
      ? `<table class="t"><thead><tr><th>Job</th><th>Task</th><th>Worker</th><th>Node</th><th class="num">Cores</th><th>Progress</th></tr></thead><tbody>${busy.map((s) => `<tr data-task="${esc(s.task ?? '')}">
        <td>${s.job_id != null ? `<a href="#/jobs/${encodeURIComponent(s.job_id)}">${esc(names.get(String(s.job_id)) ?? `job ${s.job_id}`)}</a> <span class="faint mono">#${esc(s.job_id)}</span>` : '—'}</td>
        <td class="mono">${esc(s.task_key ?? s.key ?? s.task ?? '')}</td><td class="mono faint">${esc(s.name ?? s.worker ?? '')}</td>
        <td class="mono">${esc(s.node ?? '')}</td>
        <td class="num">${esc(fmtNum(num(s.cpus ?? s.cores ?? 1), num(s.cpus) % 1 ? 1 : 0))}</td><td>${progressBar(num(s.progress))}</td></tr>`).join('')}</tbody></table>`
      : '<div class="empty">Nothing running. The farm is idle.</div>';
  }

  function usedOf(n, key, rayKey) {
    if (n[`used_${key}`] != null) return num(n[`used_${key}`]);
    if (n.used && n.used[key] != null) return num(n.used[key]);
    const avail = n[`available_${key}`] ?? n.available?.[key] ?? n.available?.[rayKey];
    const total = n[key] ?? n.resources?.[rayKey];
    if (avail != null && total != null) return Math.max(0, num(total) - num(avail));
    return 0;
  }

  function slotRow(s) {
    const busyNow = isBusy(s);
    const what = busyNow
      ? `${s.job_id != null ? `<a href="#/jobs/${encodeURIComponent(s.job_id)}" title="job ${esc(s.job_id)}">${esc(names.get(String(s.job_id)) ?? `job ${s.job_id}`)}</a> ` : ''}<span class="mono">${esc(s.task_key ?? s.key ?? s.task ?? '')}</span>`
      : '<span class="faint">idle</span>';
    const right = busyNow && s.progress != null ? `${Math.round(num(s.progress) * 100)}%` : `${fmtNum(num(s.cpus ?? 1), num(s.cpus) % 1 ? 1 : 0)} core${num(s.cpus) === 1 ? '' : 's'}`;
    return `<div class="slot ${busyNow ? 'busy' : ''}" title="${esc(s.name ?? '')}"><span class="st"></span><span class="what"><span class="faint mono">${esc(s.name ?? '')}</span> ${what}</span><span class="muted">${esc(right)}</span></div>`;
  }

  async function load() {
    try {
      const [raw, running] = await Promise.all([
        get('/api/workers'),
        get('/api/jobs?state=running').catch(() => []),
      ]);
      names = new Map((running || []).map((j) => [String(j.id), j.name]));
      if (alive) render(raw);
    } catch (err) {
      if (!alive || err.name === 'AuthError') return;
      $('#nodes', el).innerHTML = `<div class="error-box">Could not load workers: ${esc(err.message)}</div>`;
    }
  }
  const reload = throttle(load, 1000);
  await load();
  const poll = setInterval(load, 3000);
  return {
    onEvent() { reload(); },
    unmount() { alive = false; clearInterval(poll); },
  };
}
