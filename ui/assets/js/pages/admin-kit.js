// What the admin's pages (timeline, users, fleet, sensors) share: the
// "not allowed" answer in place of data, a modal confirmation that may
// carry fields (its problem+json shown next to them), and the
// datetime-local ↔ Unix ms conversions of their filters. Never fetches.
import { h, clear, uid, showProblem, clearErrors } from '../dom.js';
import { t } from '../i18n.js';

// What a page shows when the server refuses the caller (403), or the
// page is not this server's: a heading and a sentence, no data.
export function notAllowed(ctx, titleKey, reason = 'forbidden') {
  clear(ctx.main,
    h('h1', {}, t(titleKey)),
    h('p', { class: 'card', role: 'alert', 'data-test': 'not-allowed' },
      t(reason === 'hub_only' ? 'timeline.hub_only' : 'timeline.not_allowed')));
}

// Unix ms from a datetime-local value (local time), or '' when empty.
export function msOf(value) {
  if (!value) return '';
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? String(ms) : '';
}

// A datetime-local value for Unix ms (local time), or '' when none.
export function localOf(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  if (!Number.isFinite(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A modal confirmation: `title` and `text` (strings), optional `fields`
// (elements, e.g. from dom.field), the confirm button's label
// `confirm`. `submit(form)` runs on confirm; when it throws an ApiError
// the problem shows next to its field and the dialog stays open. Resolves
// to submit's result (or true), or false when cancelled (Escape too).
export function confirmDialog({ title, text, fields = [], confirm, danger = true, test = 'confirm-dialog', submit }) {
  return new Promise((resolve) => {
    const heading = uid('dlg');
    const cancel = h('button', { type: 'button', 'data-test': 'cancel' }, t('users.cancel'));
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', 'data-test': 'confirm' }, confirm);
    const form = h('form', { novalidate: true },
      h('h2', { id: heading }, title),
      text ? h('p', {}, text) : null,
      h('p', { class: 'form-error', role: 'alert' }),
      fields,
      h('div', { class: 'actions' }, ok, cancel));
    const dlg = h('dialog', { class: 'admin-dialog', 'aria-labelledby': heading, 'data-test': test }, form);
    let done = false;
    function close(value) {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    }
    cancel.addEventListener('click', () => close(false));
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      close(false);
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      ok.disabled = true;
      try {
        const value = submit ? await submit(form) : true;
        close(value === undefined ? true : value);
      } catch (e) {
        ok.disabled = false;
        showProblem(form, e);
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector('input, select, textarea');
    (first || cancel).focus();
  });
}
