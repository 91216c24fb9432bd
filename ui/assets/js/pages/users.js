// Accounts on the hub (admins): every account with its role and state;
// make one, change a role, disable (after a confirmation) or enable, and
// reset a password. The server's refusals (problem+json) show next to
// the field they name.
import { h, clear, field, fmtTime, flash, showProblem, clearErrors } from '../dom.js';
import { t } from '../i18n.js';
import { notAllowed, confirmDialog } from './admin-kit.js';

const ROLES = ['officer', 'admin', 'public', 'none'];

function roleSelect(name, selected) {
  return h('select', { name },
    ROLES.map((r) => h('option', { value: r, selected: r === selected }, t(`role.${r}`))));
}

async function render(ctx) {
  if (ctx.config.kind !== 'hub') {
    notAllowed(ctx, 'users.title', 'hub_only');
    return;
  }
  let list;
  try {
    list = await ctx.api.get('/api/v1/users');
  } catch (e) {
    if (e.status === 403) {
      notAllowed(ctx, 'users.title');
      return;
    }
    throw e;
  }

  const body = h('tbody', { 'data-test': 'users-rows' });
  const table = h('table', { class: 'users' },
    h('caption', { class: 'visually-hidden' }, t('users.caption')),
    h('thead', {}, h('tr', {},
      ['name', 'role', 'state', 'created', 'actions'].map((c) => h('th', { scope: 'col' }, t(`users.col.${c}`))))),
    body);

  async function reload() {
    list = await ctx.api.get('/api/v1/users');
    fill();
  }

  async function act(path, json, okKey, name) {
    try {
      await ctx.api.post(path, json);
      flash(t(okKey, { name }), 'ok');
      await reload();
    } catch (e) {
      flash(`${t('error.generic')}: ${e.message}`, 'error');
    }
  }

  function resetPassword(a) {
    const pw = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: 12, required: true });
    return confirmDialog({
      title: t('users.reset_title', { name: a.name }),
      text: t('users.reset_text'),
      fields: [field('users.new_password', pw, 'users.password_hint')],
      confirm: t('users.reset'),
      danger: false,
      test: 'reset-dialog',
      submit: async () => {
        await ctx.api.post(`/api/v1/users/${encodeURIComponent(a.name)}/password`, { password: pw.value });
        flash(t('users.reset_done', { name: a.name }), 'ok');
      },
    });
  }

  function row(a) {
    const role = roleSelect('role', a.role);
    role.setAttribute('aria-label', t('users.role_of', { name: a.name }));
    role.dataset.test = 'role-select';
    const saveRole = h('button', { type: 'button', 'data-test': 'save-role' }, t('users.save_role'));
    saveRole.addEventListener('click', () => {
      if (role.value === a.role) return;
      act(`/api/v1/users/${encodeURIComponent(a.name)}/role`, { role: role.value }, 'users.role_done', a.name);
    });
    const toggle = a.disabled
      ? h('button', { type: 'button', 'data-test': 'enable', onclick: () => act(`/api/v1/users/${encodeURIComponent(a.name)}/enable`, {}, 'users.enabled', a.name) }, t('users.enable'))
      : h('button', {
        type: 'button',
        class: 'danger',
        'data-test': 'disable',
        onclick: async () => {
          const yes = await confirmDialog({
            title: t('users.disable_title', { name: a.name }),
            text: t('users.disable_text', { name: a.name }),
            confirm: t('users.disable'),
            test: 'disable-dialog',
          });
          if (yes) act(`/api/v1/users/${encodeURIComponent(a.name)}/disable`, {}, 'users.disabled_done', a.name);
        },
      }, t('users.disable'));
    return h('tr', { 'data-test': 'user-row', dataset: { name: a.name } },
      h('th', { scope: 'row' }, a.name, ctx.app.session && ctx.app.session.name === a.name ? h('span', { class: 'muted' }, ` ${t('users.you')}`) : null),
      h('td', {}, h('div', { class: 'inline' }, role, saveRole)),
      h('td', { 'data-test': 'state' }, h('span', { class: a.disabled ? 'badge unverified' : 'badge verified' }, t(a.disabled ? 'users.state_disabled' : 'users.state_active'))),
      h('td', {}, fmtTime(a.created_ms)),
      h('td', {}, h('div', { class: 'inline' },
        toggle,
        h('button', { type: 'button', 'data-test': 'reset', onclick: () => resetPassword(a) }, t('users.reset')))));
  }

  function fill() {
    const items = [...list.items].sort((x, y) => x.name.localeCompare(y.name));
    clear(body, items.map(row));
  }

  const name = h('input', { name: 'name', autocomplete: 'off', autocapitalize: 'none', maxlength: 128, required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const role = roleSelect('role', 'officer');
  const form = h('form', { class: 'card', 'data-test': 'new-user', novalidate: true },
    h('h2', {}, t('users.new')),
    h('p', { class: 'form-error', role: 'alert' }),
    h('div', { class: 'row' },
      field('users.name', name, 'users.name_hint'),
      field('users.password', password, 'users.password_hint'),
      field('users.role', role),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('users.create')))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      const made = await ctx.api.post('/api/v1/users', { name: name.value.trim(), password: password.value, role: role.value });
      flash(t('users.created', { name: made.name }), 'ok');
      form.reset();
      await reload();
    } catch (e) {
      if (e.status === 403) {
        notAllowed(ctx, 'users.title');
        return;
      }
      showProblem(form, e);
    }
  });

  fill();
  clear(ctx.main, h('h1', {}, t('users.title')), form, h('h2', {}, t('users.list')), h('div', { class: 'table-wrap' }, table));
}

export const pages = [{
  path: '/users',
  render,
  nav: { label: 'users.nav', kinds: ['hub'], roles: ['admin'], order: 70 },
}];
