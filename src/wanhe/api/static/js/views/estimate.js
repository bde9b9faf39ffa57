// A job's kept estimate against its actual cost so far (the job JSON's `estimate`, see
// wanhe.api.estimate_view): one cell of the job page's numbers.
import { esc, fmtCoreHours, fmtDuration } from '../util.js';

export function estimateCell(e) {
  const [low, high] = e.core_hours_range || [];
  const range = low == null ? '' : ` (${fmtCoreHours(low)}–${fmtCoreHours(high)})`;
  const ratio = e.ratio == null ? '' : ` · ${e.ratio >= 1 ? '+' : ''}${((e.ratio - 1) * 100).toFixed(0)} % on done frames`;
  const eta = e.eta_s == null ? '' : ` · ETA ${fmtDuration(e.eta_s)}`;
  return `<span id="job-estimate" title="${esc(e.text || '')}${e.made_by ? ` — by ${esc(e.made_by)}` : ''}">`
    + `${esc(fmtCoreHours(e.core_hours))} core-h<small>${esc(range)} est. · ${esc(fmtCoreHours(e.actual_core_hours))} actual`
    + ` · ${esc(fmtCoreHours(e.projected_core_hours))} projected${esc(ratio)}${esc(eta)}</small></span>`;
}
