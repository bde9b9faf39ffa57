// A small SVG chart routine of our own: stacked bars over time, with axes, grid and tooltips.
import { esc } from './util.js';

function niceStep(max, ticks) {
  const raw = max / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

/**
 * Stacked bars. `buckets`: bucket start times (ms); `series`: [{name, color, values: number[]}].
 * `bucketMs`: width of a bucket. Draws into `svg` (width follows its box).
 */
export function stackedBars(svg, { buckets, series, bucketMs, fmtY = (v) => String(v), fmtX, yLabel = '' }) {
  const W = Math.max(320, svg.clientWidth || svg.parentElement?.clientWidth || 800);
  const H = Number(svg.getAttribute('height')) || 240;
  const m = { l: 54, r: 12, t: 12, b: 26 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  if (!buckets.length) {
    svg.innerHTML = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no usage in this period</text>`;
    return;
  }
  const totals = buckets.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
  const max = Math.max(...totals, 1e-9);
  const step = niceStep(max, 4);
  const top = Math.ceil(max / step) * step || step;
  const y = (v) => m.t + ih - (v / top) * ih;

  // X: continuous time from the first to the last bucket, one slot per bucket.
  const t0 = buckets[0];
  const t1 = buckets[buckets.length - 1] + bucketMs;
  const slots = Math.max(1, Math.round((t1 - t0) / bucketMs));
  const slotW = iw / slots;
  const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
  const barW = Math.max(1, Math.min(48, slotW * 0.78));

  const parts = [];
  parts.push('<g class="grid">');
  for (let v = 0; v <= top + 1e-12; v += step) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(fmtY(v))}</text>`);
  }
  parts.push('</g>');
  if (yLabel) parts.push(`<text x="${m.l}" y="9" text-anchor="start" style="font-size:10px">${esc(yLabel)}</text>`);

  buckets.forEach((t, i) => {
    let acc = 0;
    const cx = x(t) + slotW / 2;
    const tip = [`${fmtX ? fmtX(t, true) : new Date(t).toLocaleString()}`]
      .concat(series.filter((s) => s.values[i]).map((s) => `${s.name}: ${fmtY(s.values[i])}`))
      .join('\n');
    parts.push(`<g class="bucket"><title>${esc(tip)}</title>`);
    for (const s of series) {
      const v = s.values[i] || 0;
      if (v <= 0) continue;
      const y0 = y(acc);
      const y1 = y(acc + v);
      parts.push(`<rect x="${(cx - barW / 2).toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0.8, y0 - y1).toFixed(1)}" fill="${s.color}"/>`);
      acc += v;
    }
    parts.push(`<rect x="${(cx - slotW / 2).toFixed(1)}" y="${m.t}" width="${slotW.toFixed(1)}" height="${ih}" fill="transparent"/></g>`);
  });

  // X axis labels: at most ~8.
  parts.push(`<g class="axis"><line x1="${m.l}" x2="${W - m.r}" y1="${m.t + ih + 0.5}" y2="${m.t + ih + 0.5}"/></g>`);
  const every = Math.max(1, Math.ceil(slots / Math.max(2, Math.floor(iw / 90))));
  for (let k = 0; k < slots; k += every) {
    const t = t0 + k * bucketMs;
    parts.push(`<text x="${(x(t) + slotW / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${esc(fmtX ? fmtX(t) : new Date(t).toLocaleTimeString())}</text>`);
  }
  svg.innerHTML = parts.join('');
}
