// One event, as the API shows it to the signed-in person: its fields,
// where it is, its photos, notes and history (who changed it, for whom,
// on which device, at what clock), the values concurrent edits left side
// by side with a one-tap way to keep one (a new edit), and the actions
// this person may take here. Re-read whenever the live feed mentions it.
// The public sees only what the API gives them (no people, notes,
// photos, conflicts or history).
import { h, clear, field, showProblem, clearErrors, flash, fmtTime, statusBadge, severityBadge, shortId, uid } from '../dom.js';
import { t } from '../i18n.js';

let mapModule = null;

// A map from the maps module on `el`, or null when there is none (the
// page then works from the coordinates alone).
export async function openMap(el, ctx, opts) {
  try {
    mapModule = mapModule || await import('../map.js');
    return await mapModule.createMap(el, ctx, opts || {});
  } catch (e) {
    console.warn('no map', e);
    return null;
  }
}

const STEPS = {
  accept: ['assigned'],
  start: ['assigned'],
  resolve: ['in_progress'],
};

// Whether the signed-in person works `ev` here: the node's officer it is
// assigned to, or an admin.
export function mayWork(ctx, ev) {
  const s = ctx.app.session;
  return ctx.config.kind === 'node' && !!s
    && (s.role === 'admin' || (s.role === 'officer' && ev.assignee === s.name));
}

// Posts `/api/v1/events/{id}/{action}`; says what happened; then `done()`.
export async function act(ctx, id, action, body, done) {
  try {
    await ctx.api.post(`/api/v1/events/${encodeURIComponent(id)}/${action}`, body);
    flash(t(`event.done_${action}`), 'ok');
  } catch (e) {
    flash(`${t('event.action_failed')}: ${e.message}`, 'error');
  }
  if (done) await done();
}

// The accept / start / resolve buttons `ev`'s status allows.
export function workButtons(ctx, ev, done) {
  if (!mayWork(ctx, ev)) return [];
  const me = ctx.app.session.name;
  // Accepting is a note: once this person's is there, it is done.
  const accepted = (ev.notes || []).some((n) => n.actor === me && n.text === 'accepted the assignment');
  return Object.entries(STEPS)
    .filter(([step, from]) => from.includes(ev.status) && !(step === 'accept' && accepted))
    .map(([step]) => {
      const b = h('button', {
        type: 'button',
        class: step === 'resolve' || step === 'start' ? 'primary' : null,
        dataset: { test: step },
        'aria-label': t(`event.${step}_label`, { title: ev.title }),
      }, t(`event.${step}`));
      b.addEventListener('click', async () => {
        b.disabled = true;
        await act(ctx, ev.id, step, undefined, done);
      });
      return b;
    });
}

function fieldName(f) {
  return t(`event.field.${f}`);
}

// The edit that keeps `value` of `f`, or null when no edit can (the
// status moves by the workflow only; the reported time never changes).
function settleWith(ctx, f, value) {
  const node = ctx.config.kind === 'node';
  if (['title', 'description', 'category'].includes(f) && node) return { patch: { [f]: value } };
  if (f === 'severity' && node && /^[1-5]$/.test(value)) return { patch: { severity: Number(value) } };
  if (f === 'location' && node) {
    const [lon, lat] = value.split(',').map(Number);
    if (Number.isFinite(lon) && Number.isFinite(lat)) return { patch: { location: { lon, lat } } };
  }
  if (f === 'assignee' && ctx.app.session.role === 'admin' && value !== 'null') return { assign: value };
  return null;
}

function conflictsBox(ctx, ev, reload) {
  const entries = Object.entries(ev.conflicts || {});
  if (!entries.length) return null;
  return h('section', { class: 'conflicts', dataset: { test: 'conflicts' }, 'aria-labelledby': 'conflicts-h' },
    h('h2', { id: 'conflicts-h' }, t('event.conflicts')),
    h('p', { class: 'hint' }, t('event.conflicts_hint')),
    entries.map(([f, values]) => h('div', { class: 'conflict', dataset: { field: f } },
      h('h3', {}, fieldName(f)),
      h('div', { class: 'choices' }, values.map((v) => {
        const how = settleWith(ctx, f, v);
        const keep = how && h('button', {
          type: 'button',
          dataset: { test: 'keep' },
          'aria-label': t('event.keep_label', { field: fieldName(f), value: v }),
        }, t('event.keep'));
        if (keep) {
          keep.addEventListener('click', async () => {
            keep.disabled = true;
            try {
              if (how.patch) await ctx.api.patch(`/api/v1/events/${encodeURIComponent(ev.id)}`, how.patch);
              else await ctx.api.post(`/api/v1/events/${encodeURIComponent(ev.id)}/assign`, { assignee: how.assign });
              flash(t('event.settled', { field: fieldName(f) }), 'ok');
            } catch (e) {
              flash(`${t('event.action_failed')}: ${e.message}`, 'error');
            }
            await reload();
          });
        }
        return h('div', { class: 'choice', dataset: { value: v } },
          h('p', { class: 'value', dataset: { test: 'conflict-value' } }, v),
          keep || h('span', { class: 'hint' }, t(ctx.config.kind === 'node' ? 'event.settle_by_workflow' : 'event.settle_on_node')));
      })))));
}

// Assign (to an officer), close, reopen: an admin's, on node and hub.
async function adminActions(ctx, ev, reload) {
  if (ctx.app.session.role !== 'admin') return null;
  const out = [];
  if (ev.status === 'resolved') {
    const b = h('button', { type: 'button', dataset: { test: 'close' } }, t('event.close'));
    b.addEventListener('click', () => act(ctx, ev.id, 'close', undefined, reload));
    out.push(b);
  }
  if (ev.status === 'resolved' || ev.status === 'closed') {
    const b = h('button', { type: 'button', dataset: { test: 'reopen' } }, t('event.reopen'));
    b.addEventListener('click', () => act(ctx, ev.id, 'reopen', undefined, reload));
    out.push(b);
  }
  if (ev.status === 'closed') return h('div', { class: 'actions' }, out);
  let who;
  if (ctx.config.kind === 'hub') {
    let officers = [];
    try {
      officers = (await ctx.api.get('/api/v1/users')).items
        .filter((a) => a.role === 'officer' && !a.disabled).map((a) => a.name);
    } catch (_) { /* the select stays empty: the server would refuse anyway */ }
    who = h('select', { name: 'assignee', dataset: { test: 'assignee' } },
      h('option', { value: '' }, t('event.pick_officer')),
      officers.map((n) => h('option', { value: n, selected: n === ev.assignee }, n)));
  } else {
    who = h('input', { name: 'assignee', autocomplete: 'off', value: ev.assignee || '', dataset: { test: 'assignee' } });
  }
  const form = h('form', { class: 'assign row', novalidate: true },
    h('p', { class: 'form-error', role: 'alert' }),
    field('event.assign_to', who),
    h('div', { class: 'field' }, h('button', { type: 'submit', dataset: { test: 'assign' } }, t('event.assign'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await ctx.api.post(`/api/v1/events/${encodeURIComponent(ev.id)}/assign`, { assignee: who.value.trim() });
      flash(t('event.done_assign'), 'ok');
      await reload();
    } catch (err) {
      showProblem(form, err);
    }
  });
  return h('div', {}, out.length ? h('div', { class: 'actions' }, out) : null, form);
}

// Erasing personal data (a hub admin's): pick the title, description,
// notes and photos to erase and say why; the hub signs a redaction that
// every device applies. What is already erased reads "[redacted]".
function redactForm(ctx, ev, reload) {
  if (ctx.config.kind !== 'hub' || ctx.app.session.role !== 'admin') return null;
  const box = (name, value, labelKey, vars) => {
    const input = h('input', { type: 'checkbox', name, value, id: uid('redact'), dataset: { test: `redact-${name}` } });
    const err = h('span', { class: 'field-error', id: `${input.id}-error`, role: 'alert' });
    input.setAttribute('aria-describedby', `${input.id}-error`);
    return h('div', { class: 'field check', dataset: { field: name } },
      input, h('label', { for: input.id }, t(labelKey, vars)), err);
  };
  const reason = h('textarea', { name: 'reason', rows: 2, maxlength: 256, dataset: { test: 'redact-reason' } });
  const form = h('form', { class: 'redact-form', novalidate: true, dataset: { test: 'redact-form' } },
    h('p', { class: 'hint' }, t('event.redact_hint')),
    h('p', { class: 'form-error', role: 'alert' }),
    box('title', '1', 'event.redact_title'),
    box('description', '1', 'event.redact_description'),
    (ev.notes || []).map((n, i) => box('notes', String(i), 'event.redact_note', { n: i + 1, text: n.text.slice(0, 40) })),
    (ev.media || []).map((m) => box('media', m.hash, 'event.redact_photo', { name: m.name })),
    field('event.redact_reason', reason),
    h('button', { type: 'submit', class: 'danger', dataset: { test: 'redact' } }, t('event.redact')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const picked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
    const body = {
      title: picked('title').length > 0,
      description: picked('description').length > 0,
      notes: picked('notes').map(Number),
      media: picked('media'),
      reason: reason.value,
    };
    try {
      await ctx.api.post(`/api/v1/events/${encodeURIComponent(ev.id)}/redact`, body);
      flash(t('event.done_redact'), 'ok');
      await reload();
    } catch (err) {
      showProblem(form, err);
    }
  });
  return h('details', { class: 'redact' }, h('summary', {}, t('event.redact_open')), form);
}

function noteForm(ctx, id, reload) {
  const text = h('textarea', { name: 'text', rows: 2, dataset: { test: 'note-text' } });
  const form = h('form', { class: 'note-form', novalidate: true },
    h('p', { class: 'form-error', role: 'alert' }),
    field('event.note_label', text),
    h('button', { type: 'submit', dataset: { test: 'add-note' } }, t('event.add_note')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await ctx.api.post(`/api/v1/events/${encodeURIComponent(id)}/notes`, { text: text.value });
      text.value = '';
      await reload();
    } catch (err) {
      showProblem(form, err);
    }
  });
  return form;
}

// The edit form: only the fields changed are sent, in one PATCH.
function editForm(ctx, getEvent, reload) {
  const title = h('input', { name: 'title', maxlength: 200 });
  const description = h('textarea', { name: 'description', rows: 3 });
  const category = h('input', { name: 'category', maxlength: 64 });
  const severity = h('select', { name: 'severity' },
    [1, 2, 3, 4, 5].map((n) => h('option', { value: n }, t(`report.severity_${n}`))));
  const lon = h('input', { name: 'location.lon', inputmode: 'decimal' });
  const lat = h('input', { name: 'location.lat', inputmode: 'decimal' });
  const form = h('form', { novalidate: true },
    h('p', { class: 'form-error', role: 'alert' }),
    field('report.title_label', title),
    field('report.description', description),
    h('div', { class: 'row' }, field('report.category', category), field('report.severity', severity)),
    h('div', { class: 'row' }, field('report.lon', lon), field('report.lat', lat)),
    h('button', { type: 'submit', class: 'primary', dataset: { test: 'save-edit' } }, t('event.save')));
  const details = h('details', { class: 'edit', dataset: { test: 'edit' } },
    h('summary', {}, t('event.edit')), form);
  details.addEventListener('toggle', () => {
    const ev = getEvent();
    if (!details.open || !ev) return;
    clearErrors(form);
    title.value = ev.title;
    description.value = ev.description;
    category.value = ev.category;
    severity.value = String(ev.severity);
    lon.value = String(ev.location.lon);
    lat.value = String(ev.location.lat);
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const ev = getEvent();
    const changes = {};
    if (title.value !== ev.title) changes.title = title.value;
    if (description.value !== ev.description) changes.description = description.value;
    if (category.value !== ev.category) changes.category = category.value;
    if (Number(severity.value) !== ev.severity) changes.severity = Number(severity.value);
    const point = { lon: Number(lon.value.replace(',', '.')), lat: Number(lat.value.replace(',', '.')) };
    if (point.lon !== ev.location.lon || point.lat !== ev.location.lat) changes.location = point;
    if (!Object.keys(changes).length) {
      flash(t('event.nothing_changed'));
      return;
    }
    try {
      await ctx.api.patch(`/api/v1/events/${encodeURIComponent(ev.id)}`, changes);
      flash(t('event.saved'), 'ok');
      details.open = false;
      await reload();
    } catch (err) {
      showProblem(form, err);
    }
  });
  return details;
}

function mayEdit(ctx, ev) {
  const s = ctx.app.session;
  return ctx.config.kind === 'node' && (s.role === 'admin'
    || (s.role === 'officer' && (ev.assignee === s.name || ev.reported_by === s.name)));
}

// Device names by key, as far as this person may know them.
async function deviceNames(ctx) {
  const names = new Map();
  try {
    if (ctx.config.kind === 'hub' && ctx.app.session.role === 'admin') {
      for (const n of (await ctx.api.get('/api/v1/nodes')).items || []) names.set(n.author, n.name);
    } else if (ctx.config.kind === 'node') {
      for (const l of (await ctx.api.get('/api/v1/sync')).links || []) if (l.peer && l.name) names.set(l.peer, l.name);
    }
  } catch (_) { /* keys are shown instead */ }
  return names;
}

function historyTable(ctx, ev, names) {
  if (!ev.history) return null;
  const here = t(ctx.config.kind === 'hub' ? 'event.this_hub' : 'event.this_device');
  return h('section', { 'aria-labelledby': 'history-h', dataset: { test: 'history' } },
    h('h2', { id: 'history-h' }, t('event.history')),
    h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('event.history_when')),
        h('th', { scope: 'col' }, t('event.history_what')),
        h('th', { scope: 'col' }, t('event.history_who')),
        h('th', { scope: 'col' }, t('event.history_device')))),
      h('tbody', {}, ev.history.map((e) => h('tr', {},
        h('td', {}, fmtTime(e.hlc.wall_ms), h('br'),
          h('span', { class: 'hint', title: t('event.hlc') }, `HLC ${e.hlc.wall_ms}.${e.hlc.counter}`)),
        h('td', {}, t(`event.kind.${e.kind}`)),
        h('td', {}, e.actor || '—'),
        h('td', { title: e.author },
          e.local ? here : (names.get(e.author) || shortId(e.author)),
          h('span', { class: 'hint' }, ` #${e.seq}`))))))));
}

async function render(ctx) {
  const id = ctx.params.id;
  const heading = h('h1', { dataset: { test: 'event-title' } }, t('event.loading'));
  const top = h('div', { class: 'event-top' });
  const left = h('div', { class: 'event-main' });
  const mapEl = h('div', { class: 'map small', dataset: { test: 'event-map' }, role: 'region', 'aria-label': t('event.map_label') });
  const photos = h('div', { class: 'photos', dataset: { test: 'photos' } });
  const history = h('div', {});
  const forms = h('div', {});
  let ev = null;
  let map = null;
  let names = new Map();
  const blobs = new Map();
  let stopped = false;

  async function drawPhotos() {
    if (!ev.media) {
      clear(photos, ev.n_media ? h('p', { class: 'hint' }, t('event.photos_hidden', { n: ev.n_media })) : null);
      return;
    }
    if (!ev.media.length) {
      clear(photos, h('p', { class: 'hint' }, t('event.no_photos')));
      return;
    }
    const figures = [];
    for (const m of ev.media) {
      if (!blobs.has(m.hash)) {
        blobs.set(m.hash, ctx.api.blobUrl(`/api/v1/media/${m.hash}`).catch(() => null));
      }
      const url = await blobs.get(m.hash);
      if (url === null) blobs.delete(m.hash); // not here yet: try again next time
      const shown = !url ? h('p', { class: 'hint' }, t('event.photo_missing', { name: m.name }))
        : m.mime.startsWith('video/') ? h('video', { src: url, controls: true, 'aria-label': m.name })
          : h('img', { src: url, alt: t('event.photo_alt', { name: m.name }), dataset: { test: 'photo' } });
      figures.push(h('figure', {}, shown, h('figcaption', {}, m.name)));
    }
    if (!stopped) clear(photos, figures);
  }

  async function draw() {
    heading.textContent = ev.title;
    document.title = `${ev.title} · ${t('app.name')}`;
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, t('event.field.status')), h('dd', { dataset: { test: 'status' } }, statusBadge(ev.status)),
      h('dt', {}, t('event.field.severity')), h('dd', {}, severityBadge(ev.severity)),
      h('dt', {}, t('event.field.category')), h('dd', {}, ev.category),
      h('dt', {}, t('event.reported')), h('dd', {}, fmtTime(ev.reported_ms)),
      ev.reported_by !== undefined ? [h('dt', {}, t('event.reported_by')), h('dd', {}, ev.reported_by || '—')] : null,
      ev.assignee !== undefined ? [h('dt', {}, t('event.field.assignee')),
        h('dd', { dataset: { test: 'assignee-now' } }, ev.assignee || t('event.nobody'))] : null,
      h('dt', {}, t('event.field.location')),
      h('dd', {}, `${ev.location.lon.toFixed(5)}, ${ev.location.lat.toFixed(5)}`,
        ev.assignee === undefined ? h('span', { class: 'hint' }, ` ${t('event.location_coarse')}`) : null));
    const work = workButtons(ctx, ev, load);
    clear(top,
      work.length ? h('div', { class: 'actions', dataset: { test: 'work-actions' } }, work) : null,
      conflictsBox(ctx, ev, load));
    const notes = ev.notes ? h('section', { 'aria-labelledby': 'notes-h' },
      h('h2', { id: 'notes-h' }, t('event.notes')),
      ev.notes.length ? h('ul', { class: 'notes', dataset: { test: 'notes' } }, ev.notes.map((n) => h('li', {},
        h('span', { class: 'hint' }, `${fmtTime(n.at_ms)} · ${n.actor || '—'}`), h('br'), n.text)))
        : h('p', { class: 'hint' }, t('event.no_notes'))) : null;
    clear(left, facts,
      h('h2', {}, t('event.field.description')),
      h('p', { class: 'description' }, ev.description || t('event.no_description')),
      notes,
      await adminActions(ctx, ev, load),
      redactForm(ctx, ev, load));
    if (!forms.childElementCount && ctx.config.kind === 'node') {
      const s = ctx.app.session;
      if (s.role === 'officer' || s.role === 'admin') forms.append(noteForm(ctx, id, load));
      if (mayEdit(ctx, ev)) forms.append(editForm(ctx, () => ev, load));
    }
    clear(history, historyTable(ctx, ev, names));
    if (map) map.setMarker(ev.location.lon, ev.location.lat);
    await drawPhotos();
  }

  async function load() {
    try {
      ev = await ctx.api.get(`/api/v1/events/${encodeURIComponent(id)}`);
    } catch (e) {
      if (stopped) return;
      heading.textContent = e.status === 404 ? t('event.not_found') : t('event.load_failed');
      clear(top, h('p', { class: 'form-error', role: 'alert' }, e.message));
      return;
    }
    if (!stopped) await draw();
  }

  ctx.main.append(heading,
    h('div', { class: 'event-page' },
      h('div', {}, top, left, forms),
      h('div', {}, mapEl, h('h2', {}, t('event.photos')), photos, history)));
  names = await deviceNames(ctx);
  await load();
  if (ev) {
    map = await openMap(mapEl, ctx, { label: t('event.map_label'), lon: ev.location.lon, lat: ev.location.lat, zoom: 13 });
    if (map) map.setMarker(ev.location.lon, ev.location.lat);
    else mapEl.remove();
  }
  let timer = null;
  const stop = ctx.api.follow('/api/v1/feed', {}, (type, data) => {
    if (type === 'lagged' || (type === 'event' && data && data.id === id)) {
      clearTimeout(timer);
      timer = setTimeout(load, 250);
    }
  });
  return () => {
    stopped = true;
    stop();
    clearTimeout(timer);
    if (map) map.destroy();
    for (const p of blobs.values()) p.then((u) => u && URL.revokeObjectURL(u));
  };
}

export const pages = [{ path: '/events/:id', render }];
