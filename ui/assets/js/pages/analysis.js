// Analysis (both servers): near-duplicate reports with a Merge button,
// hotspots against each place's own baseline, and a summary — by the
// server's language model when it has one and it answers, otherwise the
// local one, always saying which. Everything comes from
// `/api/v1/analysis/…`, which checks the role (the public gets hotspots
// and summaries from its redacted view, no duplicates).
import { h, clear, field, flash, fmtTime, showProblem, statusBadge } from '../dom.js';
import { t } from '../i18n.js';

function eventLink(e) {
  return h('a', { href: `#/events/${encodeURIComponent(e.id)}` }, e.title);
}

function problemText(e) {
  const p = e.problem || {};
  return p.detail || p.title || e.message;
}

// Merging uses the workflow routes this server has: on a node a note on
// the duplicate naming the one kept, and on either server closing it
// when an admin may (a resolved event).
async function merge(ctx, pair, button) {
  const dup = encodeURIComponent(pair.duplicate.id);
  const role = ctx.app.session.role;
  button.disabled = true;
  try {
    if (ctx.config.kind === 'node') {
      await ctx.api.post(`/api/v1/events/${dup}/notes`, {
        text: t('analysis.merge_note', { id: pair.keep.id, title: pair.keep.title }),
      });
    }
    if (role === 'admin' && pair.duplicate.status === 'resolved') {
      await ctx.api.post(`/api/v1/events/${dup}/close`);
      flash(t('analysis.merged_closed'), 'info');
    } else {
      flash(t('analysis.merged_noted'), 'info');
    }
  } catch (e) {
    button.disabled = false;
    flash(problemText(e), 'error');
  }
}

function canMerge(ctx, pair) {
  if (ctx.config.kind === 'node') return true;
  return ctx.app.session.role === 'admin' && pair.duplicate.status === 'resolved';
}

function pairsTable(ctx, answer) {
  if (!answer.pairs.length) return h('p', { class: 'hint' }, t('analysis.no_duplicates'));
  return h('table', { dataset: { test: 'duplicates' } },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('analysis.col_keep')),
      h('th', { scope: 'col' }, t('analysis.col_duplicate')),
      h('th', { scope: 'col' }, t('analysis.col_why')),
      h('th', { scope: 'col' }, t('analysis.col_action')))),
    h('tbody', {}, answer.pairs.map((p) => {
      const button = h('button', {
        type: 'button',
        class: 'btn',
        dataset: { test: 'merge' },
        'aria-label': t('analysis.merge_label', { dup: p.duplicate.title, keep: p.keep.title }),
      }, t('analysis.merge'));
      button.addEventListener('click', () => merge(ctx, p, button));
      return h('tr', { dataset: { test: 'pair', keep: p.keep.id, duplicate: p.duplicate.id } },
        h('td', {}, eventLink(p.keep), ' ', statusBadge(p.keep.status), h('br'), fmtTime(p.keep.reported_ms)),
        h('td', {}, eventLink(p.duplicate), ' ', statusBadge(p.duplicate.status), h('br'), fmtTime(p.duplicate.reported_ms)),
        h('td', {}, h('ul', {}, p.reasons.map((r) => h('li', {}, r)))),
        h('td', {}, canMerge(ctx, p) ? button : h('span', { class: 'hint' }, t('analysis.merge_on_page'))));
    })));
}

function hotspotsTable(answer) {
  if (!answer.hotspots.length) return h('p', { class: 'hint' }, t('analysis.no_hotspots'));
  return h('table', { dataset: { test: 'hotspots' } },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('analysis.col_place')),
      h('th', { scope: 'col' }, t('analysis.col_recent')),
      h('th', { scope: 'col' }, t('analysis.col_expected')),
      h('th', { scope: 'col' }, t('analysis.col_score')))),
    h('tbody', {}, answer.hotspots.map((s) => h('tr', { dataset: { test: 'hotspot' } },
      h('td', {}, `${s.center.lon.toFixed(3)}, ${s.center.lat.toFixed(3)}`),
      h('td', {}, String(s.recent)),
      h('td', {}, s.expected.toFixed(1)),
      h('td', {}, s.score.toFixed(1))))));
}

function truncatedNote(answer) {
  return answer.truncated ? h('p', { class: 'hint' }, t('analysis.truncated', { n: answer.scanned })) : null;
}

async function render(ctx) {
  const publicRole = ctx.app.session.role === 'public';
  const bbox = h('input', { name: 'bbox', type: 'text', value: ctx.query.get('bbox') || '', placeholder: '13.3,52.4,13.5,52.6' });
  const hours = h('input', { name: 'window_s', type: 'number', min: '1', max: '720', value: '24' });
  const form = h('form', { class: 'filters', novalidate: true },
    field('analysis.bbox', bbox, 'analysis.bbox_hint'),
    field('analysis.window_hours', hours),
    h('p', { class: 'form-error', role: 'alert' }),
    h('button', { type: 'submit', class: 'btn primary', dataset: { test: 'analyse' } }, t('analysis.run')));
  const dupBox = h('div', { dataset: { test: 'duplicates-box' } });
  const hotBox = h('div', { dataset: { test: 'hotspots-box' } });
  const sumBox = h('div', { dataset: { test: 'summary-box' }, 'aria-live': 'polite' });
  const sumButton = h('button', { type: 'button', class: 'btn', dataset: { test: 'summarise' } }, t('analysis.summarise'));

  const area = () => (bbox.value.trim() ? { bbox: bbox.value.trim() } : {});
  const windowS = () => String(Math.round(Number(hours.value || 24) * 3600));

  async function load() {
    clear(hotBox, h('p', { class: 'hint' }, t('analysis.loading')));
    try {
      const answer = await ctx.api.get('/api/v1/analysis/hotspots', { ...area(), window_s: windowS() });
      clear(hotBox, hotspotsTable(answer), truncatedNote(answer));
    } catch (e) {
      if (e.problem && e.problem.field) showProblem(form, e);
      clear(hotBox, h('p', { class: 'form-error', role: 'alert' }, problemText(e)));
    }
    if (publicRole) return;
    clear(dupBox, h('p', { class: 'hint' }, t('analysis.loading')));
    try {
      const answer = await ctx.api.get('/api/v1/analysis/duplicates', area());
      clear(dupBox, pairsTable(ctx, answer), truncatedNote(answer));
    } catch (e) {
      clear(dupBox, h('p', { class: 'form-error', role: 'alert' }, problemText(e)));
    }
  }

  sumButton.addEventListener('click', async () => {
    sumButton.disabled = true;
    clear(sumBox, h('p', { class: 'hint' }, t('analysis.summarising')));
    try {
      const s = await ctx.api.post('/api/v1/analysis/summary', area());
      const source = s.source === 'model'
        ? h('p', { class: 'badge', dataset: { test: 'summary-source', source: 'model' } }, t('analysis.by_model'))
        : h('p', { class: 'hint', dataset: { test: 'summary-source', source: 'local' } }, t('analysis.local_because', { reason: s.reason || '' }));
      clear(sumBox, source, h('pre', { class: 'summary-text', dataset: { test: 'summary-text' } }, s.text));
    } catch (e) {
      clear(sumBox, h('p', { class: 'form-error', role: 'alert' }, problemText(e)));
    } finally {
      sumButton.disabled = false;
    }
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load();
  });

  ctx.main.append(
    h('h1', {}, t('analysis.heading')),
    form,
    h('section', { 'aria-labelledby': 'analysis-summary' },
      h('h2', { id: 'analysis-summary' }, t('analysis.summary')), sumButton, sumBox),
    h('section', { 'aria-labelledby': 'analysis-hotspots' },
      h('h2', { id: 'analysis-hotspots' }, t('analysis.hotspots')), hotBox),
    publicRole ? null : h('section', { 'aria-labelledby': 'analysis-duplicates' },
      h('h2', { id: 'analysis-duplicates' }, t('analysis.duplicates')), dupBox));
  await load();
}

export const pages = [{
  path: '/analysis',
  render,
  nav: { label: 'analysis.nav', roles: ['admin', 'officer', 'public'], order: 30 },
}];
