// The "deliverable" panel: the movie (or file) a job leaves for the user, as its job type
// names it (`JobType.deliverables`). A movie the browser can play (H.264 .mp4, WebM) plays
// here; any other (ProRes .mov) is offered for download with its size.
import { blobUrl } from '../api.js';
import { esc, fmtBytes } from '../util.js';

const PLAYABLE = /\.(mp4|m4v|webm)$/i;

export function deliverablePanel() {
  return `<section class="panel" id="deliverable-panel" data-panel="deliverable">
    <div class="panel-head"><h2>Deliverable</h2><span class="spacer"></span><span class="muted" id="deliverable-summary" style="font-size:12px"></span></div>
    <div class="panel-body"><div class="latest" id="deliverable"><span class="muted">the deliverable appears when the job is done</span></div></div>
  </section>`;
}

export function mountDeliverable(el) {
  let shown = '';
  let url = '';
  return {
    async render(job) {
      const summary = el.querySelector('#deliverable-summary');
      if (summary) summary.textContent = job.summary || '';
      const file = (job.deliverables || [])[0];
      if (!file || file.url === shown) return;
      shown = file.url;
      const box = el.querySelector('#deliverable');
      if (!PLAYABLE.test(file.path)) {
        box.innerHTML = `<a href="#" class="out" id="deliverable-file" data-url="${esc(file.url)}" data-name="${esc(file.path)}"><span class="mono">${esc(file.path)}</span><span class="muted">${esc(fmtBytes(file.bytes))} · plays in a video player, not in the browser: download it</span></a>`;
        box.querySelector('a').addEventListener('click', async (e) => {
          e.preventDefault();
          const link = document.createElement('a');
          link.href = await blobUrl(file.url);
          link.download = file.path.split('/').pop();
          document.body.append(link);
          link.click();
          link.remove();
        });
        return;
      }
      try {
        const made = await blobUrl(file.url);
        if (url) URL.revokeObjectURL(url);
        url = made;
        box.innerHTML = `<video id="deliverable-video" data-path="${esc(file.path)}" src="${url}" controls loop muted playsinline></video><span class="cap mono">${esc(file.path)} · ${esc(fmtBytes(file.bytes))}</span>`;
      } catch { shown = ''; }
    },
    unmount() { if (url) URL.revokeObjectURL(url); },
  };
}
