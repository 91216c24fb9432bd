// Signing in: name and password, the server's refusal next to the form.
import { h, field, showProblem, clearErrors } from '../dom.js';
import { t } from '../i18n.js';
import * as api from '../api.js';

async function render(ctx) {
  const name = h('input', { name: 'name', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, t('login.title')),
    h('p', { class: 'muted' }, t(ctx.config.kind === 'hub' ? 'login.hub_intro' : 'login.node_intro')),
    h('p', { class: 'form-error', role: 'alert' }),
    field('login.name', name),
    field('login.password', password),
    h('button', { type: 'submit', class: 'primary' }, t('login.submit')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    try {
      const session = await api.post('/api/v1/login', { name: name.value.trim(), password: password.value });
      api.setToken(session.token);
      await ctx.app.refreshSession();
      const next = ctx.query.get('next');
      ctx.app.go(next && next.startsWith('/') && next !== '/login' ? next : '/');
    } catch (e) {
      password.value = '';
      showProblem(form, e.status === 401 ? new api.ApiError(401, { title: t('login.refused'), detail: t('login.refused_detail') }) : e);
    }
  });
  ctx.main.append(form);
  name.focus();
}

export const pages = [{ path: '/login', render }];
