// Every page module, in one list. A module exports `pages`: objects with
// `path` (a router pattern), `render(ctx)` (which may return a function
// that tears the page down) and, for the navigation, `nav`: {label,
// kinds: ['node'|'hub'], roles: ['admin'|'officer'|'public'|'none'],
// order}.
import * as login from './login.js';
import * as events from './events.js';
import * as work from './work.js';
import * as report from './report.js';
import * as event from './event.js';
import * as outbox from './outbox.js';
import * as timeline from './timeline.js';
import * as users from './users.js';
import * as fleet from './fleet.js';
import * as sensors from './sensors.js';
import * as webhooks from './webhooks.js';
import * as analysis from './analysis.js';

export const modules = [login, events, work, report, event, outbox, timeline, users, fleet, sensors, webhooks, analysis];
