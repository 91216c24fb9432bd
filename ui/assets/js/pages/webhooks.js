// Webhook subscriptions on the hub (admins): every subscription with its
// rule, state and last delivery; a form that makes one (its secret shown
// this once, as the API answers it once) or changes one; pause and
// resume; delete after a confirmation; and a subscription's delivery log
// (state, attempts, next attempt, last answer), where a dead letter is
// sent again with Replay. The server's refusals (problem+json) show next
// to the field they name, and then nothing is stored.
import { h, clear, field, fmtTime, fmtAgo, shortId, flash, showProblem, clearErrors, uid } from '../dom.js';
import { t } from '../i18n.js';
import { notAllowed, confirmDialog } from './admin-kit.js';

const KINDS = ['event_change', 'media_attached'];
const STATUSES = ['reported', 'assigned', 'in_progress', 'resolved', 'closed'];
const STATES = ['pending', 'delivered', 'dead'];
const LOG_LIMIT = 50;

const hookPath = (id) => `/api/v1/webhooks/${encodeURIComponent(id)}`;

function statusSelect(name) {
  return h('select', { name },
    h('option', { value: '' }, t('webhooks.any_status')),
    STATUSES.map((s) => h('option', { value: s }, t(`status.${s}`))));
}

function kindText(k) {
  return k === 'media_attached' ? t('webhooks.kind_media') : t('webhooks.kind_change');
}

function typeText(type) {
  if (type === 'event.created') return t('webhooks.type_created');
  if (type === 'event.updated') return t('webhooks.type_updated');
  return type;
}

// The entry kinds as a group of checkboxes; its one error line is tied to
// the first box, which `fieldError` finds by the name `kinds`.
function kindBoxes() {
  const boxes = KINDS.map((k) => h('input', { type: 'checkbox', name: 'kinds', value: k, id: uid('kind') }));
  const errId = `${boxes[0].id}-error`;
  for (const b of boxes) b.setAttribute('aria-describedby', errId);
  const set = h('fieldset', { class: 'choices', dataset: { field: 'kinds' } },
    h('legend', {}, t('webhooks.kinds')),
    boxes.map((b) => h('label', { for: b.id, class: 'check' }, b, ' ', kindText(b.value))),
    h('span', { class: 'hint' }, t('webhooks.kinds_hint')),
    h('span', { class: 'field-error', id: errId, role: 'alert' }));
  return { set, boxes };
}

// What a subscription's rule asks for, in words.
function ruleText(w) {
  const parts = [];
  if (w.kinds.length) parts.push(t('webhooks.rule_kinds', { list: w.kinds.map(kindText).join(', ') }));
  if (w.categories.length) parts.push(t('webhooks.rule_categories', { list: w.categories.join(', ') }));
  if (w.min_severity) parts.push(t('webhooks.rule_severity', { n: w.min_severity }));
  if (w.area) parts.push(t('webhooks.rule_area', { box: w.area.join(', ') }));
  if (w.status_from || w.status_to) {
    parts.push(t('webhooks.rule_status', {
      from: w.status_from ? t(`status.${w.status_from}`) : t('webhooks.any'),
      to: w.status_to ? t(`status.${w.status_to}`) : t('webhooks.any'),
    }));
  }
  return parts.length ? parts.join('; ') : t('webhooks.rule_any');
}

function stateBadge(state) {
  const cls = state === 'delivered' ? 'badge verified' : state === 'dead' ? 'badge unverified' : 'badge';
  return h('span', { class: cls, 'data-test': 'delivery-state' }, STATES.includes(state) ? t(`webhooks.state_${state}`) : state);
}

// The last answer of a delivery: why it failed (the hub's words name
// the HTTP status), or the status of a success.
function answerText(d) {
  if (d.last_error) return d.last_error;
  return d.last_status ? t('webhooks.http_status', { status: d.last_status }) : '';
}

// The last delivery of a subscription, for its row: `undefined` while
// unknown, `null` when none was made.
function lastCell(d) {
  if (d === undefined) return h('span', { class: 'muted' }, '—');
  if (d === null) return h('span', { class: 'muted' }, t('webhooks.last_none'));
  const when = d.state === 'delivered' ? fmtAgo(d.delivered_ms) : d.state === 'pending' ? t('webhooks.attempts_n', { n: d.attempts }) : answerText(d);
  return h('span', {}, stateBadge(d.state), ' ', h('span', { class: 'small' }, when));
}

async function render(ctx) {
  if (ctx.config.kind !== 'hub') {
    notAllowed(ctx, 'webhooks.title', 'hub_only');
    return;
  }
  let list;
  try {
    list = await ctx.api.get('/api/v1/webhooks');
  } catch (e) {
    if (e.status === 403) {
      notAllowed(ctx, 'webhooks.title');
      return;
    }
    throw e;
  }
  const last = new Map(); // subscription id → its newest delivery (or null)

  // The form: a new subscription, or (`editing`) changes to one.
  let editing = null;
  const formHead = h('h2', { id: uid('wh') }, t('webhooks.new'));
  const name = h('input', { name: 'name', autocomplete: 'off', maxlength: 128, required: true });
  const url = h('input', { name: 'url', type: 'url', autocomplete: 'off', spellcheck: 'false', required: true });
  const secret = h('input', { name: 'secret', autocomplete: 'off', spellcheck: 'false', class: 'mono' });
  const secretHint = h('span', { class: 'hint' }, t('webhooks.secret_hint'));
  const categories = h('input', { name: 'categories', autocomplete: 'off' });
  const severity = h('select', { name: 'min_severity' },
    h('option', { value: '' }, t('webhooks.any_severity')),
    [1, 2, 3, 4, 5].map((n) => h('option', { value: String(n) }, t('webhooks.severity_at_least', { n }))));
  const area = h('input', { name: 'area', autocomplete: 'off', spellcheck: 'false' });
  const from = statusSelect('status_from');
  const to = statusSelect('status_to');
  const kinds = kindBoxes();
  const enabled = h('input', { type: 'checkbox', name: 'enabled', id: uid('enabled'), checked: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-test': 'save-webhook' }, t('webhooks.create'));
  const cancelEdit = h('button', { type: 'button', hidden: true, 'data-test': 'cancel-edit', onclick: () => resetForm() }, t('webhooks.cancel_edit'));
  const secretField = field('webhooks.secret', secret);
  secret.after(secretHint);
  const form = h('form', { class: 'card webhook-form', 'data-test': 'new-webhook', novalidate: true, 'aria-labelledby': formHead.id },
    formHead,
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'row' },
      field('webhooks.name', name),
      field('webhooks.url', url, 'webhooks.url_hint'),
      secretField),
    h('div', { class: 'row' },
      field('webhooks.categories', categories, 'webhooks.categories_hint'),
      field('webhooks.min_severity', severity),
      field('webhooks.area', area, 'webhooks.area_hint')),
    h('div', { class: 'row' },
      field('webhooks.status_from', from, 'webhooks.status_hint'),
      field('webhooks.status_to', to),
      kinds.set),
    h('div', { class: 'field check' }, h('label', { for: enabled.id }, enabled, ' ', t('webhooks.enabled'))),
    h('div', { class: 'actions' }, submit, cancelEdit));

  // The form's members as the API reads them: every rule member, unset
  // ones null or empty (on a change that clears them). An area that is
  // not four numbers goes as written, for the hub to refuse naming it.
  function body() {
    const areaText = area.value.trim();
    const b = {
      name: name.value.trim(),
      url: url.value.trim(),
      enabled: enabled.checked,
      kinds: kinds.boxes.filter((x) => x.checked).map((x) => x.value),
      categories: categories.value.split(',').map((s) => s.trim()).filter(Boolean),
      min_severity: severity.value ? Number(severity.value) : null,
      area: areaText ? areaText.split(',').map((s) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s.trim())) : null,
      status_from: from.value || null,
      status_to: to.value || null,
    };
    if (secret.value) b.secret = secret.value;
    return b;
  }

  function resetForm() {
    editing = null;
    form.reset();
    clearErrors(form);
    formHead.textContent = t('webhooks.new');
    submit.textContent = t('webhooks.create');
    secretHint.textContent = t('webhooks.secret_hint');
    cancelEdit.hidden = true;
  }

  function edit(w) {
    resetForm();
    editing = w;
    name.value = w.name;
    url.value = w.url;
    categories.value = w.categories.join(', ');
    severity.value = w.min_severity ? String(w.min_severity) : '';
    area.value = w.area ? w.area.join(', ') : '';
    from.value = w.status_from || '';
    to.value = w.status_to || '';
    for (const b of kinds.boxes) b.checked = w.kinds.includes(b.value);
    enabled.checked = w.enabled;
    formHead.textContent = t('webhooks.edit_title', { name: w.name });
    submit.textContent = t('webhooks.save');
    secretHint.textContent = t('webhooks.secret_keep');
    cancelEdit.hidden = false;
    form.scrollIntoView({ block: 'start' });
    name.focus();
  }

  // The secret, shown once after the subscription is made.
  const secretHead = h('h2', { id: uid('wh'), tabindex: '-1' });
  const secretBox = h('section', { class: 'card secret', hidden: true, 'data-test': 'webhook-secret', 'aria-labelledby': secretHead.id });
  function showSecret(made) {
    const value = h('input', { name: 'shown_secret', readonly: true, value: made.secret, class: 'mono', spellcheck: 'false', autocomplete: 'off', 'data-test': 'secret-value' });
    secretHead.textContent = t('webhooks.secret_title', { name: made.webhook.name });
    clear(secretBox,
      secretHead,
      h('p', { class: 'warn-text' }, t('webhooks.secret_once')),
      field('webhooks.secret_label', value),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-test': 'secret-done', onclick: hideSecret }, t('webhooks.secret_done'))));
    secretBox.hidden = false;
    value.focus();
    value.select();
  }
  function hideSecret() {
    clear(secretBox);
    secretBox.hidden = true;
    name.focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      if (editing) {
        const changed = await ctx.api.patch(hookPath(editing.id), body());
        flash(t('webhooks.saved', { name: changed.name }), 'ok');
        resetForm();
      } else {
        const made = await ctx.api.post('/api/v1/webhooks', body());
        resetForm();
        showSecret(made);
      }
      await reload();
    } catch (e) {
      if (e.status === 403) {
        notAllowed(ctx, 'webhooks.title');
        return;
      }
      showProblem(form, e);
    } finally {
      submit.disabled = false;
    }
  });

  // The list of subscriptions.
  const rows = h('tbody', { 'data-test': 'webhook-rows' });
  const table = h('table', { class: 'webhooks' },
    h('caption', { class: 'visually-hidden' }, t('webhooks.caption')),
    h('thead', {}, h('tr', {},
      ['name', 'url', 'rule', 'state', 'last', 'actions'].map((c) => h('th', { scope: 'col' }, t(`webhooks.col_${c}`))))),
    rows);
  const empty = h('p', { class: 'muted', 'data-test': 'webhooks-none' }, t('webhooks.none'));

  async function act(what, okKey, w) {
    try {
      await what();
      flash(t(okKey, { name: w.name }), 'ok');
      await reload();
    } catch (e) {
      flash(`${t('error.generic')}: ${e.message}`, 'error');
    }
  }

  async function remove(w) {
    const yes = await confirmDialog({
      title: t('webhooks.delete_title', { name: w.name }),
      text: t('webhooks.delete_text'),
      confirm: t('webhooks.delete'),
      test: 'delete-dialog',
      submit: async () => {
        await ctx.api.request('DELETE', hookPath(w.id));
        return true;
      },
    });
    if (!yes) return;
    flash(t('webhooks.deleted', { name: w.name }), 'ok');
    if (logFor && logFor.id === w.id) closeLog();
    if (editing && editing.id === w.id) resetForm();
    await reload();
  }

  function row(w) {
    const toggle = h('button', {
      type: 'button',
      'data-test': w.enabled ? 'pause' : 'resume',
      onclick: () => act(() => ctx.api.patch(hookPath(w.id), { enabled: !w.enabled }), w.enabled ? 'webhooks.paused' : 'webhooks.resumed', w),
    }, t(w.enabled ? 'webhooks.pause' : 'webhooks.resume'));
    return h('tr', { 'data-test': 'webhook-row', dataset: { id: w.id, name: w.name } },
      h('th', { scope: 'row' }, w.name),
      h('td', { class: 'mono wrap' }, w.url),
      h('td', { 'data-test': 'rule' }, ruleText(w)),
      h('td', { 'data-test': 'state' }, h('span', { class: w.enabled ? 'badge verified' : 'badge unverified' }, t(w.enabled ? 'webhooks.active' : 'webhooks.paused_state'))),
      h('td', { 'data-test': 'last-delivery' }, lastCell(last.get(w.id))),
      h('td', {}, h('div', { class: 'inline' },
        h('button', { type: 'button', 'data-test': 'show-deliveries', 'aria-label': t('webhooks.deliveries_of', { name: w.name }), onclick: () => openLog(w) }, t('webhooks.deliveries')),
        toggle,
        h('button', { type: 'button', 'data-test': 'edit', onclick: () => edit(w) }, t('webhooks.edit')),
        h('button', { type: 'button', class: 'danger', 'data-test': 'delete', onclick: () => remove(w) }, t('webhooks.delete')))));
  }

  function fill() {
    const items = [...list.items].sort((x, y) => x.name.localeCompare(y.name));
    clear(rows, items.map(row));
    empty.hidden = items.length > 0;
  }

  // Each subscription's newest delivery, for its row (a failure leaves
  // the cell unknown rather than breaking the page).
  async function lastDeliveries() {
    await Promise.all(list.items.map(async (w) => {
      try {
        const page = await ctx.api.get(`${hookPath(w.id)}/deliveries`, { limit: 1 });
        last.set(w.id, page.items[0] || null);
      } catch (_) {
        last.delete(w.id);
      }
    }));
  }

  async function reload() {
    list = await ctx.api.get('/api/v1/webhooks');
    await lastDeliveries();
    fill();
    if (logFor) {
      const still = list.items.find((w) => w.id === logFor.id);
      if (still) logFor = still;
    }
  }

  // One subscription's delivery log.
  let logFor = null;
  const logHead = h('h2', { id: uid('wh'), tabindex: '-1' });
  const logState = h('select', { name: 'state', 'data-test': 'deliveries-state' },
    h('option', { value: '' }, t('webhooks.any_state')),
    STATES.map((s) => h('option', { value: s }, t(`webhooks.state_${s}`))));
  const logRows = h('tbody', { 'data-test': 'delivery-rows' });
  const logNote = h('p', { class: 'muted', role: 'status', 'data-test': 'deliveries-summary' });
  const logBox = h('section', { class: 'card', hidden: true, 'data-test': 'deliveries', 'aria-labelledby': logHead.id },
    logHead,
    h('div', { class: 'row log-filter' },
      field('webhooks.state_filter', logState),
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'data-test': 'deliveries-refresh', onclick: () => refresh() }, t('webhooks.refresh')),
        h('button', { type: 'button', 'data-test': 'deliveries-close', onclick: () => closeLog() }, t('webhooks.close')))),
    logNote,
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, t('webhooks.deliveries_caption')),
      h('thead', {}, h('tr', {},
        ['created', 'what', 'state', 'attempts', 'next', 'answer', 'actions'].map((c) => h('th', { scope: 'col' }, t(`webhooks.dcol_${c}`))))),
      logRows)));
  logState.addEventListener('change', () => loadLog());

  async function replay(d) {
    try {
      await ctx.api.post(`/api/v1/webhook-deliveries/${encodeURIComponent(d.id)}/replay`);
      flash(t('webhooks.replayed'), 'ok');
      await refresh();
      logHead.focus();
    } catch (e) {
      flash(`${t('error.generic')}: ${e.message}`, 'error');
    }
  }

  function deliveryRow(d) {
    return h('tr', { 'data-test': 'delivery-row', dataset: { id: d.id, state: d.state } },
      h('td', {}, fmtTime(d.created_ms)),
      h('td', {}, typeText(d.type), d.event ? [' ', h('a', { href: `#/events/${encodeURIComponent(d.event)}`, class: 'mono' }, shortId(d.event))] : null),
      h('td', {}, stateBadge(d.state), d.delivered_ms ? h('div', { class: 'small muted' }, fmtTime(d.delivered_ms)) : null),
      h('td', { 'data-test': 'attempts' }, String(d.attempts)),
      h('td', {}, d.state === 'pending' && d.next_attempt_ms ? fmtTime(d.next_attempt_ms) : '—'),
      h('td', { class: 'wrap', 'data-test': 'answer' }, answerText(d) || '—'),
      h('td', {}, d.state === 'dead'
        ? h('button', { type: 'button', 'data-test': 'replay', 'aria-label': t('webhooks.replay_of', { when: fmtTime(d.created_ms) }), onclick: () => replay(d) }, t('webhooks.replay'))
        : null));
  }

  async function loadLog() {
    const w = logFor;
    if (!w) return;
    try {
      const page = await ctx.api.get(`${hookPath(w.id)}/deliveries`, { limit: LOG_LIMIT, state: logState.value });
      if (!logFor || logFor.id !== w.id) return;
      clear(logRows, page.items.map(deliveryRow));
      // The newest delivery, also the subscription's "last delivery".
      if (!logState.value) {
        last.set(w.id, page.items[0] || null);
        fill();
      }
      logNote.textContent = page.items.length ? t('webhooks.deliveries_shown', { n: page.items.length }) : t('webhooks.deliveries_none');
    } catch (e) {
      clear(logRows);
      logNote.textContent = `${t('error.generic')}: ${e.message}`;
    }
  }

  async function openLog(w) {
    logFor = w;
    logState.value = '';
    logHead.textContent = t('webhooks.deliveries_title', { name: w.name });
    logBox.hidden = false;
    await loadLog();
    logHead.focus();
  }

  function closeLog() {
    logFor = null;
    logBox.hidden = true;
    clear(logRows);
  }

  // The log and the list again (the worker delivers in the background).
  async function refresh() {
    try {
      await reload();
    } catch (_) { /* the log says what failed */ }
    await loadLog();
  }

  await lastDeliveries();
  fill();
  clear(ctx.main,
    h('h1', {}, t('webhooks.title')),
    h('p', { class: 'muted' }, t('webhooks.intro')),
    secretBox,
    form,
    h('h2', {}, t('webhooks.list')),
    empty,
    h('div', { class: 'table-wrap' }, table),
    logBox);
}

export const pages = [{
  path: '/webhooks',
  render,
  nav: { label: 'webhooks.nav', kinds: ['hub'], roles: ['admin'], order: 75 },
}];
