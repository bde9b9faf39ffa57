// Where a job publishes in Kitsu and how that stands (the job JSON's `kitsu`, see
// wanhe.api.views._kitsu): one cell of the job page's numbers, linking to the published
// revision (its task's page in Kitsu, on its preview) once it landed, else to the production.
import { esc } from '../util.js';

const WORDS = {
  waiting: 'waits for the job to finish',
  published: 'published',
  partial: 'published in part',
  failed: 'failed',
  skipped: 'not published',
};

export function kitsuCell(k) {
  const where = `${k.shot} · ${k.task}${k.reel_task && k.reel_task !== k.task ? ` (reel: ${k.reel_task})` : ''}`;
  const url = k.revision_url || k.production_url;
  const target = url
    ? `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${esc(where)}</a>`
    : esc(where);
  const landed = k.state === 'published' || k.state === 'partial';
  const rev = landed && k.revision != null ? ` · revision ${esc(k.revision)}` : '';
  const tries = k.state === 'waiting' && k.tries ? ` · try ${esc(k.tries)}` : '';
  const cls = k.state === 'failed' ? 'bad' : (k.state === 'published' ? 'ok' : '');
  return `<span id="job-kitsu" class="${cls}" title="${esc(k.message || '')}">${target}`
    + `<small> · ${esc(k.state === 'waiting' && k.message ? k.message : (WORDS[k.state] || k.state))}${rev}${tries}`
    + `${['failed', 'skipped', 'partial'].includes(k.state) ? `: ${esc(k.message || '')}` : ''}</small></span>`;
}
