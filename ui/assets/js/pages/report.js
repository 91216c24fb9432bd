// Reporting an event on the node: what, how bad, where (a tap on the
// map, the device's position, or typed coordinates) and photos. The
// server checks every field; its refusals are shown next to the field
// they name. Photos are attached once the event exists, then the event's
// page opens.
import { h, field, uid, showProblem, clearErrors, fieldError, flash } from '../dom.js';
import { t } from '../i18n.js';
import { openMap } from './event.js';

// Suggested categories (stored as written here); "other" takes free text.
export const CATEGORIES = ['flood', 'fire', 'storm', 'hazard', 'road', 'water', 'medical', 'security', 'infrastructure'];

function categoryLabel(c) {
  return t(`report.category.${c}`);
}

// A location field: a fieldset named `location` (the server's refusals
// of `location`, `location.lon` and `location.lat` land in it) with the
// map, "use my location" and the coordinates as text fields, so it works
// by keyboard and without a map.
function locationPicker(ctx) {
  const lon = h('input', { name: 'location.lon', inputmode: 'decimal', autocomplete: 'off', dataset: { test: 'lon' } });
  const lat = h('input', { name: 'location.lat', inputmode: 'decimal', autocomplete: 'off', dataset: { test: 'lat' } });
  const id = uid('loc');
  const err = h('span', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  const status = h('span', { class: 'hint', role: 'status', 'aria-live': 'polite' });
  const mapEl = h('div', { class: 'map pick', dataset: { test: 'report-map' }, role: 'region', 'aria-label': t('report.map_label') });
  let map = null;
  const set = (point) => {
    lon.value = point.lon.toFixed(6);
    lat.value = point.lat.toFixed(6);
    status.textContent = t('report.location_set', { lon: lon.value, lat: lat.value });
    if (map) map.setMarker(point.lon, point.lat);
  };
  const locate = h('button', { type: 'button', dataset: { test: 'locate' } }, t('report.use_my_location'));
  locate.addEventListener('click', () => {
    err.textContent = '';
    if (!navigator.geolocation || !window.isSecureContext) {
      err.textContent = t('report.geo_unavailable');
      return;
    }
    locate.disabled = true;
    status.textContent = t('report.geo_waiting');
    navigator.geolocation.getCurrentPosition((pos) => {
      locate.disabled = false;
      set({ lon: pos.coords.longitude, lat: pos.coords.latitude });
    }, (e) => {
      locate.disabled = false;
      status.textContent = '';
      const why = { 1: 'report.geo_denied', 2: 'report.geo_failed', 3: 'report.geo_timeout' }[e.code] || 'report.geo_failed';
      err.textContent = t(why);
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  });
  for (const input of [lon, lat]) {
    input.addEventListener('change', () => {
      const p = read();
      if (p && map) map.setMarker(p.lon, p.lat);
    });
  }
  const read = () => {
    if (lon.value.trim() === '' && lat.value.trim() === '') return null;
    return { lon: Number(lon.value.trim().replace(',', '.')), lat: Number(lat.value.trim().replace(',', '.')) };
  };
  const box = h('fieldset', { class: 'location', name: 'location', id, 'aria-describedby': `${id}-error` },
    h('legend', {}, t('report.location')),
    h('p', { class: 'hint' }, t('report.location_hint')),
    mapEl,
    h('div', { class: 'row' },
      field('report.lon', lon),
      field('report.lat', lat),
      h('div', { class: 'field' }, locate)),
    status,
    err);
  return {
    box,
    read,
    async mount() {
      // Start where this node's newest event is (the team's area), or
      // on the whole world.
      let view = { zoom: 2 };
      try {
        const newest = (await ctx.api.get('/api/v1/events', { limit: 1 })).items[0];
        if (newest) view = { lon: newest.location.lon, lat: newest.location.lat, zoom: 11 };
      } catch (_) { /* the world, then */ }
      map = await openMap(mapEl, ctx, { label: t('report.map_label'), ...view });
      if (!map) {
        mapEl.remove();
        return;
      }
      map.pickLocation((p) => set(p));
    },
    destroy() {
      if (map) map.destroy();
    },
  };
}

async function render(ctx) {
  const title = h('input', { name: 'title', autocomplete: 'off', maxlength: 200, dataset: { test: 'title' } });
  const description = h('textarea', { name: 'description', rows: 3, dataset: { test: 'description' } });
  const category = h('select', { name: 'category', dataset: { test: 'category' } },
    CATEGORIES.map((c) => h('option', { value: c }, categoryLabel(c))),
    h('option', { value: '' }, t('report.category_other')));
  const other = h('input', { name: 'category_other', autocomplete: 'off', maxlength: 64, dataset: { test: 'category-other' } });
  const otherField = field('report.category_other_label', other);
  otherField.hidden = true;
  category.addEventListener('change', () => {
    otherField.hidden = category.value !== '';
    if (!otherField.hidden) other.focus();
  });
  const severity = h('select', { name: 'severity', dataset: { test: 'severity' } },
    [1, 2, 3, 4, 5].map((n) => h('option', { value: n, selected: n === 3 }, t(`report.severity_${n}`))));
  const photos = h('input', {
    name: 'file', type: 'file', accept: 'image/*', capture: 'environment', multiple: true, dataset: { test: 'photos' },
  });
  const chosen = h('ul', { class: 'chosen', 'aria-live': 'polite' });
  photos.addEventListener('change', () => {
    chosen.replaceChildren(...[...photos.files].map((f) => h('li', {}, f.name)));
  });
  const loc = locationPicker(ctx);
  const submit = h('button', { type: 'submit', class: 'primary', dataset: { test: 'submit' } }, t('report.submit'));
  const form = h('form', { class: 'report', novalidate: true, dataset: { test: 'report-form' } },
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'split' },
      h('div', {},
        field('report.title_label', title, 'report.title_hint'),
        field('report.description', description),
        h('div', { class: 'row' }, field('report.category', category), field('report.severity', severity)),
        otherField,
        field('report.photos', photos, 'report.photos_hint'),
        chosen),
      h('div', {}, loc.box)),
    h('div', { class: 'actions' }, submit, h('a', { href: '#/work', class: 'btn' }, t('report.cancel'))));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = {
      title: title.value,
      description: description.value,
      category: category.value || other.value.trim(),
      severity: Number(severity.value),
    };
    if (!category.value && !body.category) {
      // The server would say the same; this keeps the free-text field named.
      fieldError(form, 'category_other', t('report.category_missing'));
      other.focus();
      return;
    }
    const point = loc.read();
    if (point) body.location = point;
    submit.disabled = true;
    submit.textContent = t('report.sending');
    let ack;
    try {
      ack = await ctx.api.post('/api/v1/events', body);
    } catch (e) {
      submit.disabled = false;
      submit.textContent = t('report.submit');
      if (e.problem && e.problem.field === 'category' && !category.value) e.problem.field = 'category_other';
      showProblem(form, e);
      return;
    }
    const failed = [];
    const files = [...photos.files];
    for (const [i, f] of files.entries()) {
      submit.textContent = t('report.uploading', { n: i + 1, total: files.length });
      const data = new FormData();
      data.append('file', f, f.name);
      try {
        await ctx.api.upload(`/api/v1/events/${ack.event}/media`, data);
      } catch (e) {
        failed.push(`${f.name}: ${e.message}`);
      }
    }
    if (failed.length) flash(t('report.upload_failed', { files: failed.join('; ') }), 'error');
    else flash(t('report.saved'), 'ok');
    ctx.app.go(`/events/${ack.event}`);
  });

  ctx.main.append(h('h1', {}, t('report.heading')),
    h('p', { class: 'muted' }, t('report.intro')),
    form);
  title.focus();
  await loc.mount();
  return () => loc.destroy();
}

export const pages = [{
  path: '/report',
  render,
  nav: { label: 'report.nav', kinds: ['node'], roles: ['officer', 'admin'], order: 12 },
}];
