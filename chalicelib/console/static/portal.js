/* The integrator portal: one integrator's deliveries, health, endpoint and event catalog, through a session opened
 * from a single-use link. The link's code arrives in the URL fragment (never sent to a server), is exchanged once
 * for a session token kept in sessionStorage, and is then removed from the address bar. Everything shown is text
 * (dom.js); the API answers only what this integrator's session may see. */

import { apiPath, bearer, createApi } from './api.js';
import { badge, clear, dash, el, excerpt, notice, timeTag } from './dom.js';

const KEY = 'order-relay-portal';
const STATUSES = ['failed', 'expired', 'waiting', 'retrying', 'pending', 'delivered', 'superseded'];
const EVENTS = ['order.created', 'order.updated', 'order.cancelled'];
const main = document.getElementById('main');
const api = createApi({ auth: () => bearer(sessionStorage.getItem(KEY)) });
const state = { session: null, section: 'deliveries', filters: { status: '', since: '', until: '' }, cursors: [null],
  page: 0, open: null, timer: null };

function can(scope) {
  return Boolean(state.session && state.session.scopes.includes(scope));
}

function messages() {
  return el('div', { className: 'messages', id: 'messages', 'aria-live': 'polite' });
}

function fail(error) {
  if (error && error.status === 401) {
    sessionStorage.removeItem(KEY);
    return showSignedOut('Your portal session has ended (it expired or was revoked). Ask for a new link.');
  }
  const region = document.getElementById('messages');
  if (region) notice(region, 'error', error.message || String(error));
  return undefined;
}

function say(text) {
  const region = document.getElementById('messages');
  if (region) notice(region, 'success', text);
}

function showSignedOut(text) {
  document.getElementById('topbar').hidden = true;
  clear(main).append(el('div', { className: 'card empty' },
    el('p', { className: 'empty-title', text: 'Integrator portal' }),
    el('p', { className: 'muted', text })));
}

async function start() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const code = fragment.get('code');
  if (code) {
    history.replaceState(null, '', location.pathname + location.search);
    try {
      const opened = await api.request('POST', 'portal/sessions', { code }, { auth: () => ({}) });
      sessionStorage.setItem(KEY, opened.token);
    } catch (error) {
      return showSignedOut(error.message);
    }
  }
  if (!sessionStorage.getItem(KEY)) return showSignedOut('Open the portal link your operator sent you.');
  try {
    state.session = await api.request('GET', 'portal/session');
  } catch (error) {
    sessionStorage.removeItem(KEY);
    return showSignedOut(error.status === 401 ? 'Your portal session has ended. Ask for a new link.' : error.message);
  }
  document.getElementById('topbar').hidden = false;
  document.getElementById('who').textContent = state.session.integrator + ' · integrator portal';
  document.getElementById('expires').textContent = 'Session ends ' + new Date(state.session.expires_at).toLocaleString();
  document.getElementById('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  route();
  return undefined;
}

async function signOut() {
  try { await api.request('DELETE', 'portal/session'); } catch (_) { /* ending anyway */ }
  sessionStorage.removeItem(KEY);
  showSignedOut('Signed out.');
}

function route() {
  const section = location.hash.slice(1) || 'deliveries';
  state.section = ['deliveries', 'health', 'endpoint', 'events'].includes(section) ? section : 'deliveries';
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.section === state.section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  clearInterval(state.timer);
  state.open = null;
  const render = { deliveries: renderDeliveries, health: renderHealth, endpoint: renderEndpoint, events: renderEvents };
  render[state.section]().catch(fail);
  main.focus();
}

// --- deliveries -------------------------------------------------------------------------------------------------

async function renderDeliveries() {
  const statusSelect = el('select', { id: 'status-filter' },
    el('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => el('option', { value: s, text: s, selected: state.filters.status === s })));
  const since = el('input', { type: 'datetime-local', id: 'since', value: state.filters.since });
  const until = el('input', { type: 'datetime-local', id: 'until', value: state.filters.until });
  const apply = (event) => {
    event.preventDefault();
    state.filters = { status: statusSelect.value, since: since.value, until: until.value };
    state.cursors = [null];
    state.page = 0;
    loadList().catch(fail);
  };
  const testButton = el('button', { type: 'button', className: 'button ghost', id: 'send-test', text: 'Send a test event',
    on: { click: sendTest } });
  clear(main).append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Deliveries' }),
      el('span', { className: 'muted', text: 'Every order sent to you, newest change first' })),
    messages(),
    el('form', { className: 'filters', on: { submit: apply } },
      el('div', { className: 'field' }, el('label', { htmlFor: 'status-filter', text: 'Status' }), statusSelect),
      el('div', { className: 'field' }, el('label', { htmlFor: 'since', text: 'Changed since' }), since),
      el('div', { className: 'field' }, el('label', { htmlFor: 'until', text: 'Changed until' }), until),
      el('div', { className: 'field actions' }, el('button', { type: 'submit', className: 'button primary', text: 'Show' }),
        testButton, can('retry') ? el('button', { type: 'button', className: 'button ghost', id: 'replay',
          text: 'Replay failed in this range', on: { click: replay } }) : null)),
    el('div', { id: 'list', className: 'card flush' }),
    el('div', { id: 'detail' }));
  await loadList();
  state.timer = setInterval(() => refresh().catch(fail), 4000);
}

function asIso(local) {
  return local ? new Date(local).toISOString() : undefined;
}

async function loadList() {
  const params = new URLSearchParams({ limit: '25' });
  if (state.filters.status) params.set('status', state.filters.status);
  if (state.filters.since) params.set('since', asIso(state.filters.since));
  if (state.filters.until) params.set('until', asIso(state.filters.until));
  const cursor = state.cursors[state.page];
  if (cursor) params.set('cursor', cursor);
  const answer = await api.request('GET', 'portal/deliveries?' + params.toString());
  state.cursors[state.page + 1] = answer.next_cursor;
  const list = document.getElementById('list');
  if (!list) return;
  clear(list);
  if (!answer.items.length) {
    list.append(el('div', { className: 'empty' }, el('p', { className: 'empty-title', text: 'No deliveries here' }),
      el('p', { className: 'muted', text: 'Change the filters, or send a test event.' })));
  } else {
    const rows = answer.items.map((item) => el('tr', {
      className: 'clickable', tabIndex: 0, dataset: { order: item.order_id },
      on: { click: () => openDelivery(item.order_id), keydown: (e) => { if (e.key === 'Enter') openDelivery(item.order_id); } },
    },
    el('td', { dataset: { label: 'Changed' } }, timeTag(item.updated_at)),
    el('td', { dataset: { label: 'Order' } }, el('span', { className: 'mono', text: item.order_id }),
      item.test ? el('span', { className: 'sub', text: 'test event' }) : null),
    el('td', { dataset: { label: 'Event' }, text: item.event }),
    el('td', { dataset: { label: 'Status' } }, badge(item.status)),
    el('td', { dataset: { label: 'Attempts' }, className: 'num', text: String(item.attempts) }),
    el('td', { dataset: { label: 'Last error' }, className: 'detail', text: dash(item.last_error) })));
    list.append(el('table', { className: 'table deliveries' },
      el('caption', { className: 'visually-hidden', text: 'Deliveries' }),
      el('thead', {}, el('tr', {}, ['Changed', 'Order', 'Event', 'Status', 'Attempts', 'Last error']
        .map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows)));
  }
  list.append(el('div', { className: 'pager' },
    el('button', { type: 'button', className: 'button ghost small', text: 'Newer', disabled: state.page === 0,
      on: { click: () => { state.page -= 1; loadList().catch(fail); } } }),
    el('span', { className: 'page-label', text: 'Page ' + (state.page + 1) }),
    el('button', { type: 'button', className: 'button ghost small', text: 'Older', disabled: !answer.next_cursor,
      on: { click: () => { state.page += 1; loadList().catch(fail); } } })));
}

async function refresh() {
  if (state.section !== 'deliveries') return;
  await loadList();
  if (state.open) await openDelivery(state.open, true);
}

async function openDelivery(orderId, quiet) {
  const delivery = await api.request('GET', apiPath`portal/deliveries/${orderId}`);
  state.open = orderId;
  const detail = document.getElementById('detail');
  if (!detail) return;
  const retryable = can('retry') && ['failed', 'expired'].includes(delivery.status) && !delivery.test;
  const head = el('div', { className: 'page-head' },
    el('h2', { text: (delivery.test ? 'Test event ' : 'Order ') + orderId }), badge(delivery.status),
    retryable ? el('button', { type: 'button', className: 'button primary small', id: 'retry', text: 'Retry this delivery',
      on: { click: () => retry(orderId) } }) : null);
  const facts = el('dl', { className: 'facts' },
    fact('Event', delivery.event), fact('webhook-id', delivery.webhook_id), fact('Attempts', delivery.attempts),
    fact('Last answer', delivery.last_status_code), fact('Next attempt', delivery.next_attempt_at),
    fact('Deliver by', delivery.deliver_by), fact('Your status', delivery.remote_status),
    fact('Acknowledgement', delivery.ack));
  const attempts = delivery.attempts.length ? delivery.attempts.map(attempt)
    : [el('p', { className: 'notice info', text: delivery.why_no_attempt || 'No attempt yet.' })];
  const card = el('section', { className: 'card stack', id: 'delivery', 'aria-label': 'Delivery ' + orderId },
    head, facts, el('h3', { text: 'Attempts' }), el('div', { className: 'attempts' }, attempts));
  clear(detail).append(card);
  if (!quiet) card.scrollIntoView({ block: 'nearest' });
}

function fact(label, value) {
  return [el('div', {}, el('dt', { text: label }), el('dd', { text: dash(value) }))];
}

function attempt(line) {
  const headers = Object.entries(line.request_headers || {}).map(([k, v]) => k + ': ' + v).join('\n');
  return el('article', { className: 'attempt' },
    el('div', { className: 'attempt-head' },
      el('strong', { text: '#' + line.attempt }), timeTag(line.at, true), badge(line.outcome),
      el('span', { className: 'num', text: line.status_code ? 'HTTP ' + line.status_code : 'no answer' }),
      el('span', { className: 'num', text: Math.round(line.latency_ms) + ' ms' }),
      line.error_class ? el('span', { className: 'mono', text: line.error_class }) : null,
      line.test ? el('span', { className: 'badge tone-info', text: 'test' }) : null),
    line.error ? el('p', { className: 'detail bad', text: line.error }) : null,
    el('details', {}, el('summary', { text: 'Request headers (secrets masked)' }), el('pre', { className: 'sent', text: dash(headers) })),
    el('details', { open: true }, el('summary', { text: 'Body as sent' }), el('pre', { className: 'sent body', text: dash(line.request_body) })),
    el('details', {}, el('summary', { text: 'Your answer' }),
      el('pre', { className: 'sent', text: line.response_body ? excerpt(line.response_body, 2000) : '—' })));
}

async function retry(orderId) {
  try {
    await api.request('POST', apiPath`portal/deliveries/${orderId}/retry`);
    say('Sent again: watch the new attempt appear below.');
    await refresh();
  } catch (error) { fail(error); }
}

async function replay() {
  const since = asIso(state.filters.since);
  const until = asIso(state.filters.until) || new Date().toISOString();
  if (!since) return fail(new Error('Choose "Changed since" (and Show) first: the replay takes that range.'));
  try {
    const answer = await api.request('POST', 'portal/replay', { since, until });
    say('Replaying ' + answer.replayed.length + ' failed deliveries.');
    await refresh();
  } catch (error) { fail(error); }
  return undefined;
}

async function sendTest() {
  try {
    const delivery = await api.request('POST', 'portal/test-events');
    say('Test event sent: ' + delivery.status + (delivery.last_status_code ? ' (HTTP ' + delivery.last_status_code + ')' : ''));
    await loadList();
    await openDelivery(delivery.order_id);
  } catch (error) { fail(error); }
}

// --- health -----------------------------------------------------------------------------------------------------

async function renderHealth() {
  const health = await api.request('GET', 'portal/health');
  const recent = health.window || {};
  clear(main).append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Health' }),
      el('span', { className: 'muted', text: 'The last ' + recent.minutes + ' minutes' })),
    messages(),
    el('section', { className: 'card' }, el('dl', { className: 'facts', id: 'health' },
      el('div', {}, el('dt', { text: 'Circuit' }), el('dd', {}, badge(health.circuit))),
      fact('Success rate', recent.success_rate === null ? null : Math.round(recent.success_rate * 1000) / 10 + ' %'),
      fact('p95 latency', recent.p95_ms === null ? null : recent.p95_ms + ' ms'),
      fact('Attempts', recent.attempts), fact('Waiting', health.waiting),
      fact('Rate limit', health.max_requests_per_second ? health.max_requests_per_second + ' per second' : 'none'),
      fact('Enabled', health.enabled ? 'yes' : 'no'), fact('Last error', health.last_error))));
}

// --- endpoint ---------------------------------------------------------------------------------------------------

async function renderEndpoint() {
  const endpoint = await api.request('GET', 'portal/endpoint');
  const editable = can('manage_endpoint');
  const url = el('input', { id: 'endpoint-url', type: 'url', value: endpoint.url, disabled: !editable, required: true });
  const timeout = el('input', { id: 'endpoint-timeout', type: 'number', min: '0.1', max: '30', step: '0.1',
    value: String(endpoint.timeout_seconds), disabled: !editable });
  const boxes = EVENTS.map((name) => el('input', { type: 'checkbox', id: 'event-' + name, value: name,
    checked: endpoint.events.includes(name), disabled: !editable }));
  const save = async (event) => {
    event.preventDefault();
    try {
      const changed = await api.request('PATCH', 'portal/endpoint', {
        url: url.value, timeout_seconds: Number(timeout.value), events: boxes.filter((b) => b.checked).map((b) => b.value),
      });
      say('Saved: deliveries now go to ' + changed.url);
    } catch (error) { fail(error); }
  };
  const secretOut = el('div', { id: 'secret-out' });
  clear(main).append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Endpoint' })),
    messages(),
    el('form', { className: 'card stack', id: 'endpoint-form', on: { submit: save } },
      el('div', {}, el('label', { htmlFor: 'endpoint-url', text: 'URL' }), url),
      el('fieldset', {}, el('legend', { className: 'small', text: 'Events' }),
        EVENTS.map((name, i) => el('div', { className: 'row' }, boxes[i], el('label', { htmlFor: 'event-' + name, text: name })))),
      el('div', {}, el('label', { htmlFor: 'endpoint-timeout', text: 'Timeout (seconds)' }), timeout),
      editable ? el('button', { type: 'submit', className: 'button primary', text: 'Save' })
        : el('p', { className: 'help', text: 'This link does not allow changing the endpoint.' })),
    el('section', { className: 'card stack' }, el('h2', { text: 'Callback secret' }),
      el('p', { className: 'muted', text: 'Sign your callbacks to ' + dash(endpoint.callback_url) + ' with it. '
        + 'After a rotation the previous secret keeps working until the next one.' }),
      can('rotate_secret') ? el('button', { type: 'button', className: 'button ghost', id: 'rotate', text: 'Rotate the secret',
        on: { click: () => rotate(secretOut) } }) : el('p', { className: 'help', text: 'This link does not allow rotating.' }),
      secretOut));
}

async function rotate(out) {
  try {
    const answer = await api.request('POST', 'portal/callback-secret');
    clear(out).append(el('p', { className: 'notice success', role: 'status' }, 'New secret (shown once, copy it now): ',
      el('code', { className: 'secret', id: 'new-secret', text: answer.callback_secret })));
  } catch (error) { fail(error); }
}

// --- events -----------------------------------------------------------------------------------------------------

async function renderEvents() {
  const catalog = await api.request('GET', 'portal/catalog');
  const sample = catalog.sample;
  clear(main).append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Events' }),
      el('span', { className: 'muted', text: 'What we send you, and what you send back' })),
    messages(),
    catalog.events.map((event) => el('section', { className: 'card stack' }, el('h2', { className: 'mono', text: event.event }),
      el('p', { text: event.description }),
      event.headers ? el('ul', {}, event.headers.map((h) => el('li', {}, el('code', { text: h.name }), ' — ', h.description))) : null,
      event.statuses ? el('p', { className: 'muted', text: 'Statuses: ' + event.statuses.join(', ') }) : null)),
    el('section', { className: 'card stack' }, el('h2', { text: 'Your body for the sample order' }),
      el('pre', { className: 'sent', id: 'sample-headers',
        text: Object.entries(sample.headers).map(([k, v]) => k + ': ' + v).join('\n') }),
      el('pre', { className: 'sent', id: 'sample-body', text: JSON.stringify(sample.body, null, 2) })));
}

start().catch((error) => showSignedOut(error.message));
