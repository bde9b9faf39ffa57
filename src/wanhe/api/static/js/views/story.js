// A story job: its shots in order with their state and picture, the reel with a language
// switch (picture muted, the chosen language's audio and subtitles kept in sync with it; the
// picture is that language's lip-synced reel.<lang>.mp4 where there is one) and the dubbed
// lines that overran their slot.
import { blobUrl } from '../api.js';
import { badge, esc } from '../util.js';

export function storyPanel() {
  return `<section class="panel" id="story-panel" hidden>
    <div class="panel-head"><h2>Story reel</h2><span class="spacer"></span>
      <label class="field" for="story-lang">Language</label>
      <select id="story-lang"></select></div>
    <div class="panel-body">
      <div class="story-player" id="story-player"><span class="muted">the reel appears when its last task is done</span></div>
      <ol class="story-shots" id="story-shots"></ol>
      <div id="story-overruns"></div>
    </div>
  </section>`;
}

export function mountStory(el) {
  const urls = new Map(); // API path -> blob URL
  let shown = '';
  let video = null;
  let audio = null;

  async function blob(path) {
    if (!path) return '';
    if (!urls.has(path)) urls.set(path, await blobUrl(path));
    return urls.get(path);
  }

  function sync() {
    if (!video || !audio) return;
    if (Math.abs(audio.currentTime - video.currentTime) > 0.1) audio.currentTime = video.currentTime;
    if (video.paused !== audio.paused) (video.paused ? audio.pause() : audio.play().catch(() => {}));
  }

  async function setLanguage(story, lang) {
    if (!video) return;
    const picture = (story.reel_urls || {})[lang] || story.reel_url;
    const [a, vtt, v] = await Promise.all([blob(story.audio_urls[lang]), blob(story.subtitle_urls[lang]), blob(picture)]);
    if (video.dataset.reel !== picture) { // this language's mouths: swap the picture in place
      const at = video.currentTime;
      const playing = !video.paused;
      video.dataset.reel = picture;
      video.src = v;
      video.addEventListener('loadedmetadata', () => {
        video.currentTime = at;
        if (playing) video.play().catch(() => {});
      }, { once: true });
    }
    audio.src = a;
    for (const t of Array.from(video.querySelectorAll('track'))) t.remove();
    const track = document.createElement('track');
    Object.assign(track, { kind: 'subtitles', srclang: lang, label: lang, src: vtt, default: true });
    video.appendChild(track);
    track.track.mode = 'showing';
    sync();
  }

  async function render(story) {
    el.querySelector('#story-panel').hidden = false;
    const select = el.querySelector('#story-lang');
    if (select.options.length !== story.languages.length) {
      select.innerHTML = story.languages.map((l, i) => `<option value="${esc(l)}">${esc(l)}${i === 0 ? ' (original)' : ''}</option>`).join('');
      select.onchange = () => setLanguage(story, select.value);
    }
    const shots = el.querySelector('#story-shots');
    const thumbs = await Promise.all(story.shots.map((s) => blob(s.thumb_url).catch(() => '')));
    shots.innerHTML = story.shots.map((s, i) => `<li class="story-shot" data-shot="${esc(s.id)}">
      ${thumbs[i] ? `<img src="${thumbs[i]}" alt="shot ${esc(s.id)}">` : '<div class="story-thumb"></div>'}
      <div><b>${esc(s.id)}</b> ${badge(s.state)}<br><small class="muted">${esc(s.scene || '')} · ${esc(s.source)} · ${s.lines} line(s)${s.seconds ? ` · ${s.seconds.toFixed(1)} s` : ''}${s.pick ? ` · candidate ${esc(s.pick.candidate)} (${esc(s.pick.by)})` : ''}</small></div>
    </li>`).join('');
    const over = story.overruns || [];
    el.querySelector('#story-overruns').innerHTML = over.length
      ? `<h3>Lines that overran their slot</h3><ul class="story-overruns">${over.map((o) => `<li><b>${esc(o.line)}</b> (${esc(o.lang)}) ${esc(o.character)}: “${esc(o.text)}” — ${o.overrun_s.toFixed(2)} s (${o.overrun_pct.toFixed(0)} %) past its slot even sped up 15 %</li>`).join('')}</ul>`
      : (story.reel_url ? '<p class="muted">Every dubbed line fits its slot.</p>' : '');
    if (story.reel_url && shown !== story.reel_url) {
      shown = story.reel_url;
      const src = await blob(story.reel_url);
      el.querySelector('#story-player').innerHTML = `<video id="story-video" src="${src}" data-reel="${esc(story.reel_url)}" controls muted playsinline></video><audio id="story-audio"></audio>`;
      video = el.querySelector('#story-video');
      audio = el.querySelector('#story-audio');
      for (const e of ['play', 'pause', 'seeked', 'timeupdate', 'ratechange']) video.addEventListener(e, sync);
      await setLanguage(story, select.value || story.languages[0]);
    }
  }

  return {
    render,
    unmount() { for (const u of urls.values()) URL.revokeObjectURL(u); urls.clear(); },
  };
}
