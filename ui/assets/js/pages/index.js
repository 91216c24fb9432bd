// Every page module, in one list. A module exports `pages`: objects with
// `path` (a router pattern), `render(ctx)` (which may return a function
// that tears the page down) and, for the navigation, `nav`: {label,
// kinds: ['node'|'hub'], roles: ['admin'|'officer'|'public'|'none'],
// order}.
import * as login from './login.js';
import * as events from './events.js';

export const modules = [login, events];
