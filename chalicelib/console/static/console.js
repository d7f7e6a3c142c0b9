/* order-relay operator console: its screens (sign-in, orders, one order, integrators), its routing and its
 * refresh. Loaded as an ES module by index.html; no build step, nothing from another host.
 *
 * What other pages will share lives in its own modules next to this one: api.js (the API client) and dom.js
 * (text-only rendering helpers). This module owns the console's session: the admin token is kept in
 * sessionStorage only, never in a URL, and gone when the tab closes or on sign-out; api.js is handed a function
 * that reads it. Module imports resolve against this module's URL, so they keep any API Gateway stage prefix
 * (/prod/console/console.js imports /prod/console/api.js, which calls /prod/api/v1/...).
 */

import { ApiError, apiPath, bearer, createApi, inBatches } from './api.js';
import {
  TONES, ago, append, badge, cell, clear, dash, describe, el, excerpt, formatTime, localInputValue, notice, table,
  timeTag,
} from './dom.js';

const TOKEN_KEY = 'order-relay.console.token';
const REFRESH_MS = 5000;
const FAST_REFRESH_MS = 1000;
const FAST_AFTER_ACTION_MS = 15000;
const DETAIL_MAX_AGE_MS = 30000;
const HEALTH_RECHECK_MS = 60000;
const DETAIL_CONCURRENCY = 4;
const PAGE_SIZES = [10, 20, 50, 100];
const PAGE_SIZE = 20;
const ORDER_STATUSES = ['pending', 'dispatched', 'accepted', 'preparing', 'ready', 'picked_up', 'delivered',
  'rejected', 'cancelled', 'failed'];
const ORDER_ENDS = new Set(['delivered', 'rejected', 'cancelled', 'failed']);
const IN_FLIGHT = new Set(['pending', 'retrying', 'waiting']);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  route: null,
  view: null,
  generation: 0,
  timer: null,
  refreshing: null,
  fastUntil: 0,
  orders: { filterKey: '', cursors: [null], page: 0 },
  details: new Map(),
  healthMissing: new Map(),
};

// Every request carries the token of the moment; sign-in tries a candidate token with its own `auth`.
const api = createApi({ auth: () => bearer(state.token) }).request;

// --- session ------------------------------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.details.clear();
  state.orders = { filterKey: '', cursors: [null], page: 0 };
  stopRefresh();
  renderSignIn(message);
}

function isTokenRefused(error) {
  return error instanceof ApiError && error.refused;
}

function renderSignIn(message) {
  document.getElementById('topbar').hidden = true;
  state.view = null;
  const main = clear(document.getElementById('main'));
  const errors = el('div', { className: 'form-errors', id: 'sign-in-error' });
  const input = el('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help sign-in-error',
  });
  const submit = el('button', { type: 'submit', className: 'button primary', text: 'Sign in' });
  const form = el('form', { className: 'sign-in-form', on: { submit: onSubmit } },
    el('label', { htmlFor: 'token', text: 'Admin token' }),
    input,
    el('p', { className: 'help', id: 'token-help' },
      el('code', { text: 'make run' }), ' prints one and writes it to ', el('code', { text: '.local/stack.json' }),
      '. It is kept in this tab only and forgotten when you sign out or close the tab.'),
    errors,
    submit);
  main.append(el('section', { className: 'sign-in card', 'aria-labelledby': 'sign-in-title' },
    el('div', { className: 'sign-in-brand' }, el('img', { src: 'console/icon.svg', alt: '', width: 36, height: 36 }),
      el('div', {}, el('h1', { id: 'sign-in-title', text: 'order-relay console' }),
        el('p', { className: 'muted', text: 'See every order reach its partners, and fix the ones that did not.' }))),
    form));
  if (message) notice(errors, 'error', message);
  input.focus();

  async function onSubmit(event) {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    notice(errors, 'info');
    try {
      await api('GET', 'integrators', undefined, { auth: () => bearer(token) });
      sessionStorage.setItem(TOKEN_KEY, token);
      state.token = token;
      input.value = '';
      start();
    } catch (error) {
      let text = error.message;
      if (error.status === 403 && error.code === 'admin_required') {
        text = 'This token is valid but it is not an admin token. The console needs an admin token.';
      } else if (isTokenRefused(error)) {
        text = 'That token was refused: it is wrong, revoked or expired (' + error.message + ').';
      }
      notice(errors, 'error', text);
      submit.disabled = false;
      submit.textContent = 'Sign in';
      input.select();
    }
  }
}

// --- routing ------------------------------------------------------------------------------------------------

function parseRoute() {
  const hash = window.location.hash || '#/orders';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'integrators') return { name: 'integrators' };
  if (parts[0] === 'orders' && parts[1]) return { name: 'order', id: decodeURIComponent(parts[1]) };
  const limit = Number(params.get('limit'));
  return {
    name: 'orders', status: params.get('status') || '', seller: params.get('seller') || '',
    limit: PAGE_SIZES.includes(limit) ? limit : PAGE_SIZE,
  };
}

function ordersHash(status, seller, limit) {
  const params = new URLSearchParams();
  if (status) params.set('status', status);
  if (seller) params.set('seller', seller);
  if (limit && limit !== PAGE_SIZE) params.set('limit', String(limit));
  const query = params.toString();
  return '#/orders' + (query ? '?' + query : '');
}

function onHashChange() {
  if (!state.token) return;
  if (!window.location.hash.startsWith('#/')) return;
  show(parseRoute());
}

function show(route) {
  state.route = route;
  state.generation += 1;
  document.getElementById('topbar').hidden = false;
  const section = route.name === 'integrators' ? 'integrators' : 'orders';
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const main = clear(document.getElementById('main'));
  const views = { orders: ordersView, order: orderView, integrators: integratorsView };
  state.view = views[route.name](route, main);
  document.title = state.view.title + ' · order-relay console';
  refresh();
}

// --- refresh ------------------------------------------------------------------------------------------------

function stopRefresh() {
  if (state.timer) window.clearTimeout(state.timer);
  state.timer = null;
}

function scheduleRefresh() {
  stopRefresh();
  if (!state.token) return;
  const delay = Date.now() < state.fastUntil ? FAST_REFRESH_MS : REFRESH_MS;
  state.timer = window.setTimeout(refresh, delay);
}

function soon() {
  state.fastUntil = Date.now() + FAST_AFTER_ACTION_MS;
  refresh();
}

// Re-reads the current view's data and redraws only its data regions: filters, inputs, open dialogs and the
// focused control survive (the control is found again by its data-focus-key).
async function refresh() {
  if (!state.view || !state.token) return;
  const generation = state.generation;
  // One refresh per view at a time; a refresh of a view the operator already left does not hold up the new one.
  if (state.refreshing === generation) return;
  if (document.hidden) { scheduleRefresh(); return; }
  state.refreshing = generation;
  const view = state.view;
  const stamp = document.getElementById('refreshed');
  try {
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focusKey : undefined;
    await view.load(() => generation === state.generation);
    if (generation !== state.generation) return;
    if (focused) {
      const again = document.querySelector('[data-focus-key="' + CSS.escape(focused) + '"]');
      if (again && again !== document.activeElement) again.focus();
    }
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString();
    stamp.classList.remove('stale');
    stamp.title = '';
  } catch (error) {
    if (isTokenRefused(error)) {
      signOut('The API refused the token (' + error.message + '): it may have been revoked. Sign in again.');
      return;
    }
    if (generation === state.generation && view.failed) view.failed(error);
    stamp.textContent = 'Refresh failed ' + new Date().toLocaleTimeString();
    stamp.classList.add('stale');
    stamp.title = error.message;
  } finally {
    if (state.refreshing === generation) state.refreshing = null;
    if (state.token && generation === state.generation) scheduleRefresh();
  }
}

// --- orders list --------------------------------------------------------------------------------------------

function ordersView(route, main) {
  const filterKey = [route.status, route.seller, route.limit].join('\u0000');
  if (state.orders.filterKey !== filterKey) state.orders = { filterKey, cursors: [null], page: 0 };

  const statusSelect = el('select', { id: 'filter-status', name: 'status' },
    el('option', { value: '', text: 'Any status' }),
    ORDER_STATUSES.map((s) => el('option', { value: s, text: s.replace(/_/g, ' '), selected: s === route.status })));
  const sellerInput = el('input', {
    id: 'filter-seller', name: 'seller', type: 'search', value: route.seller, placeholder: 'e.g. s-1',
    autocomplete: 'off', spellcheck: 'false',
  });
  const sizeSelect = el('select', { id: 'page-size', name: 'limit' },
    PAGE_SIZES.map((n) => el('option', { value: String(n), text: String(n), selected: n === route.limit })));
  const filters = el('form', { className: 'filters', role: 'search', 'aria-label': 'Filter orders',
    on: { submit: (event) => {
      event.preventDefault();
      const target = ordersHash(statusSelect.value, sellerInput.value.trim(), Number(sizeSelect.value));
      if (window.location.hash === target) refresh();
      else window.location.hash = target;
    } } },
  el('div', { className: 'field' }, el('label', { htmlFor: 'filter-status', text: 'Status' }), statusSelect),
  el('div', { className: 'field' }, el('label', { htmlFor: 'filter-seller', text: 'Seller id' }), sellerInput),
  el('div', { className: 'field narrow' }, el('label', { htmlFor: 'page-size', text: 'Per page' }), sizeSelect),
  el('div', { className: 'field actions' },
    el('button', { type: 'submit', className: 'button primary', text: 'Apply' }),
    el('a', { className: 'button ghost', href: '#/orders', text: 'Clear' })));
  statusSelect.addEventListener('change', () => filters.requestSubmit());
  sizeSelect.addEventListener('change', () => filters.requestSubmit());

  const messages = el('div', { className: 'messages' });
  const results = el('div', { className: 'results', 'aria-live': 'off' });
  const pageLabel = el('span', { className: 'page-label' });
  const newer = el('button', { type: 'button', className: 'button ghost small', text: '← Newer',
    dataset: { focusKey: 'page-newer' }, on: { click: () => turnPage(-1) } });
  const older = el('button', { type: 'button', className: 'button ghost small', text: 'Older →',
    dataset: { focusKey: 'page-older' }, on: { click: () => turnPage(1) } });
  const pager = el('nav', { className: 'pager', 'aria-label': 'Pages' }, newer, pageLabel, older);

  main.append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Orders' }),
      el('p', { className: 'muted', text: 'Newest first. Each row shows where the order stands with every integrator.' })),
    filters, messages, el('div', { className: 'card flush' }, results), pager);

  let page = { items: [], next_cursor: null };

  function turnPage(step) {
    const orders = state.orders;
    if (step > 0 && page.next_cursor) {
      orders.cursors = orders.cursors.slice(0, orders.page + 1).concat([page.next_cursor]);
      orders.page += 1;
    } else if (step < 0 && orders.page > 0) {
      orders.page -= 1;
    } else {
      return;
    }
    results.setAttribute('aria-busy', 'true');
    refresh();
  }

  async function load(current) {
    const orders = state.orders;
    const params = new URLSearchParams({ limit: String(route.limit) });
    if (route.status) params.set('status', route.status);
    if (route.seller) params.set('seller_id', route.seller);
    const cursor = orders.cursors[orders.page];
    if (cursor) params.set('cursor', cursor);
    const answer = await api('GET', 'orders?' + params.toString());
    if (!current()) return;
    page = answer;
    draw();
    await loadDetails(page.items, current);
    if (current()) draw();
  }

  // The list carries no deliveries: read each order on screen again when it changed, while a delivery is
  // still in flight, or when the copy is older than DETAIL_MAX_AGE_MS.
  async function loadDetails(items, current) {
    const now = Date.now();
    const stale = items.filter((item) => {
      const cached = state.details.get(item.id);
      if (!cached) return true;
      if (cached.order.updated_at !== item.updated_at || now - cached.at > DETAIL_MAX_AGE_MS) return true;
      return (cached.order.deliveries || []).some((d) => IN_FLIGHT.has(d.status));
    });
    await inBatches(stale, DETAIL_CONCURRENCY, async (item) => {
      if (!current()) return;
      try {
        state.details.set(item.id, { order: await api('GET', apiPath`orders/${item.id}`), at: Date.now() });
      } catch (error) {
        if (isTokenRefused(error)) throw error;
      }
    });
  }

  function draw() {
    results.removeAttribute('aria-busy');
    notice(messages, 'info');
    const orders = state.orders;
    newer.disabled = orders.page === 0;
    older.disabled = !page.next_cursor;
    pageLabel.textContent = 'Page ' + (orders.page + 1);
    pager.hidden = orders.page === 0 && !page.next_cursor;
    if (!page.items.length) {
      const filtered = route.status || route.seller;
      clear(results).append(el('div', { className: 'empty' },
        el('p', { className: 'empty-title', text: filtered ? 'No orders match these filters.' : 'No orders yet.' }),
        el('p', { className: 'muted', text: filtered
          ? 'Try another status or seller, or clear the filters.'
          : 'Orders created with POST /api/v1/orders appear here within a few seconds.' })));
      return;
    }
    clear(results).append(table('orders-table', 'Orders, newest first',
      ['Order', 'Created', 'Seller', 'Customer', 'Status', 'Deliveries'], page.items.map(orderRow)));
  }

  function orderRow(item) {
    const detail = state.details.get(item.id);
    const href = '#/orders/' + encodeURIComponent(item.id);
    const row = el('tr', { className: 'clickable', on: { click: (event) => {
      if (event.target.closest('a, button')) return;
      window.location.hash = href;
    } } },
    cell('Order', null, el('a', { href, className: 'mono', text: item.id,
      dataset: { focusKey: 'order-' + item.id } })),
    cell('Created', null, timeTag(item.created_at),
      el('span', { className: 'sub', text: ago(item.created_at) })),
    cell('Seller', null, dash(item.seller && item.seller.name),
      el('span', { className: 'sub mono', text: item.seller && item.seller.id })),
    cell('Customer', null, dash(item.user && item.user.name),
      el('span', { className: 'sub mono', text: item.user && item.user.id })),
    cell('Status', null, badge(item.status)),
    cell('Deliveries', null, deliveryChips(detail)));
    return row;
  }

  function failed(error) {
    notice(messages, 'error', 'Could not load orders: ' + error.message);
  }

  return { title: 'Orders', load, failed };
}

function deliveryChips(detail) {
  if (!detail) return el('span', { className: 'muted', text: 'loading…' });
  const deliveries = detail.order.deliveries || [];
  if (!deliveries.length) return el('span', { className: 'muted', text: 'none yet' });
  return el('ul', { className: 'chips', 'aria-label': 'Deliveries' }, deliveries.map((d) =>
    el('li', { className: 'chip tone-' + (TONES[d.status] || 'info'), title: d.integrator + ': ' + d.status },
      el('span', { className: 'chip-name', text: d.integrator }),
      el('span', { className: 'chip-state', text: d.status.replace(/_/g, ' ') }))));
}

// --- one order ----------------------------------------------------------------------------------------------

function orderView(route, main) {
  const messages = el('div', { className: 'messages' });
  const loadNotice = el('div', { className: 'messages' });
  const cardNotes = new Map();
  const summary = el('div', { className: 'order-summary' });
  const timeline = el('ol', { className: 'timeline' });
  const deliveries = el('div', { className: 'deliveries' });
  const cancelButton = el('button', { type: 'button', className: 'button danger', text: 'Cancel order…',
    dataset: { focusKey: 'cancel' }, on: { click: () => openCancel() } });
  const cancelHint = el('span', { className: 'muted small' });
  const title = el('h1', { className: 'mono order-id', text: route.id });
  const statusSlot = el('span');

  const reason = el('input', { id: 'cancel-reason', type: 'text', maxLength: 200, autocomplete: 'off',
    placeholder: 'e.g. customer called to cancel' });
  const dialogErrors = el('div', { className: 'form-errors' });
  const confirmCancel = el('button', { type: 'submit', className: 'button danger', text: 'Cancel order' });
  const keep = el('button', { type: 'button', className: 'button ghost', text: 'Keep order',
    on: { click: () => dialog.close() } });
  const dialog = el('dialog', { className: 'dialog', 'aria-labelledby': 'cancel-title' },
    el('form', { on: { submit: submitCancel } },
      el('h2', { id: 'cancel-title', text: 'Cancel this order?' }),
      el('p', {}, 'Order ', el('span', { className: 'mono', text: route.id }),
        ' will be cancelled and every integrator that has it will be told. This cannot be undone.'),
      el('label', { htmlFor: 'cancel-reason', text: 'Reason (optional, kept on the timeline)' }), reason,
      dialogErrors,
      el('div', { className: 'dialog-actions' }, keep, confirmCancel)));

  main.append(
    el('a', { className: 'back', href: backHref(), text: '← Orders' }),
    el('div', { className: 'page-head order-head' },
      el('div', {}, el('p', { className: 'eyebrow', text: 'Order' }), title, statusSlot),
      el('div', { className: 'head-actions' }, cancelButton, cancelHint)),
    loadNotice, messages,
    el('section', { className: 'card', 'aria-labelledby': 'summary-title' },
      el('h2', { id: 'summary-title', className: 'visually-hidden', text: 'Summary' }), summary),
    el('div', { className: 'order-grid' },
      el('section', { className: 'card deliveries-card', 'aria-labelledby': 'deliveries-title' },
        el('h2', { id: 'deliveries-title', text: 'Deliveries' }), deliveries),
      el('section', { className: 'card', 'aria-labelledby': 'timeline-title' },
        el('h2', { id: 'timeline-title', text: 'Timeline' }), timeline)),
    dialog);

  let order = null;

  async function load(current) {
    let answers;
    try {
      answers = await Promise.all([
        api('GET', apiPath`orders/${route.id}`),
        api('GET', apiPath`orders/${route.id}/deliveries`),
      ]);
    } catch (error) {
      if (error.status === 404) {
        if (!current()) return;
        notFound(error);
        return;
      }
      throw error;
    }
    if (!current()) return;
    [order] = answers;
    state.details.set(order.id, { order, at: Date.now() });
    draw(order, answers[1]);
  }

  function notFound(error) {
    order = null;
    cancelButton.hidden = true;
    clear(statusSlot);
    clear(summary).append(el('div', { className: 'empty' },
      el('p', { className: 'empty-title', text: 'Order not found.' }),
      el('p', { className: 'muted', text: error.message + '. Check the id, or go back to the list.' })));
    clear(timeline);
    clear(deliveries);
  }

  function draw(current, log) {
    notice(loadNotice, 'info');
    clear(statusSlot).append(badge(current.status));
    const ended = ORDER_ENDS.has(current.status);
    cancelButton.disabled = ended;
    cancelHint.textContent = ended ? 'A ' + current.status + ' order can no longer be cancelled.' : '';

    const details = current.order || {};
    const items = details.items || [];
    clear(summary).append(el('dl', { className: 'facts' },
      fact('Created', timeTag(current.created_at, true)),
      fact('Updated', timeTag(current.updated_at, true)),
      fact('Version', String(current.version)),
      fact('Seller', party(current.seller)),
      fact('Customer', party(current.user)),
      fact('Order time', el('span', {}, dash(details.datetime),
        el('span', { className: 'sub', text: details.timezone }))),
      fact('Note', el('span', { className: 'note', text: dash(details.user_note) })),
      fact('Items', items.length
        ? el('ul', { className: 'items' }, items.map((i) =>
          el('li', {}, el('span', { className: 'qty', text: i.quantity + '×' }), ' ', i.name,
            el('span', { className: 'sub mono', text: i.id }))))
        : '—')));

    append(clear(timeline), (current.timeline || []).slice().reverse().map((step) =>
      el('li', {}, el('div', { className: 'timeline-head' }, badge(step.status), timeTag(step.at)),
        el('p', { className: 'timeline-text' }, el('span', { className: 'source', text: step.source }), ' · ',
          dash(step.message)))));
    if (!timeline.firstChild) timeline.append(el('li', { className: 'muted', text: 'No changes yet.' }));

    const states = log.deliveries || [];
    clear(deliveries);
    if (!states.length) {
      deliveries.append(el('div', { className: 'empty' },
        el('p', { className: 'empty-title', text: 'No deliveries yet.' }),
        el('p', { className: 'muted', text: 'The dispatcher picks new orders up within seconds. If this stays '
          + 'empty, no enabled integrator takes this seller\'s orders.' })));
    }
    for (const delivery of states) {
      const attempts = (log.attempts || []).filter((a) => a.integrator === delivery.integrator);
      deliveries.append(deliveryCard(current, delivery, attempts));
    }
  }

  function fact(label, value) {
    return el('div', { className: 'fact' }, el('dt', { text: label }), el('dd', {}, value));
  }

  function party(who) {
    if (!who) return '—';
    return el('span', {}, dash(who.name), el('span', { className: 'sub mono', text: who.id }),
      who.phone ? el('span', { className: 'sub', text: who.phone }) : null);
  }

  function deliveryCard(current, delivery, attempts) {
    const name = delivery.integrator;
    const status = el('div', { className: 'delivery-messages' });
    let note = cardNotes.get(name);
    // A note lasts until the delivery moves on: a queued retry until it settles, a refusal until it changes.
    if (note && (note.kind === 'success' ? !IN_FLIGHT.has(delivery.status) : delivery.status !== 'failed')) {
      cardNotes.delete(name);
      note = undefined;
    }
    if (note) notice(status, note.kind, note.text);
    const retry = delivery.status === 'failed'
      ? el('button', { type: 'button', className: 'button primary small', text: 'Retry delivery',
        dataset: { focusKey: 'retry-' + name }, on: { click: () => retryDelivery(current.id, name, retry, status) } })
      : null;
    const facts = el('dl', { className: 'facts compact' },
      factInline('Event', delivery.event),
      factInline('Attempts', delivery.attempts),
      factInline('Last code', delivery.last_status_code),
      delivery.next_attempt_at ? factInline('Next attempt', formatTime(delivery.next_attempt_at)) : null,
      factInline('Partner says', delivery.remote_status
        ? delivery.remote_status + (delivery.remote_message ? ' — ' + delivery.remote_message : '') : null),
      delivery.external_id ? factInline('Partner ref', delivery.external_id) : null,
      delivery.last_error ? factInline('Last error', describe(delivery.last_error)) : null);
    return el('article', { className: 'delivery', dataset: { integrator: name }, 'aria-label': 'Delivery to ' + name },
      el('header', { className: 'delivery-head' },
        el('h3', { text: name }), badge(delivery.status),
        el('span', { className: 'spacer' }), retry),
      facts, status, attemptsTable(attempts));
  }

  function factInline(label, value) {
    return el('div', { className: 'fact' }, el('dt', { text: label }), el('dd', { text: dash(value) }));
  }

  function attemptsTable(attempts) {
    if (!attempts.length) return el('p', { className: 'muted small', text: 'No attempts yet.' });
    const rows = attempts.slice().sort((a, b) => String(a.at).localeCompare(String(b.at))).map((a) => {
      const failedAttempt = a.outcome !== 'delivered';
      const error = [a.error_class, a.error, a.detail].filter(Boolean).join(': ');
      const retryIn = a.retry_in_seconds ? 'next try in ' + a.retry_in_seconds + ' s' : '';
      const detail = [failedAttempt ? error : '', a.response_body ? excerpt(a.response_body, 160) : '', retryIn]
        .filter(Boolean).join(' · ');
      return el('tr', { className: 'attempt' },
        cell('#', { text: a.attempt }),
        cell('Time', null, timeTag(a.at)),
        cell('Outcome', null, badge(a.outcome)),
        cell('Code', { className: 'mono', text: dash(a.status_code) }),
        cell('Latency', { className: 'num',
          text: a.latency_ms === null || a.latency_ms === undefined ? '—' : Math.round(a.latency_ms) + ' ms' }),
        cell('Error or response', { className: 'detail' + (failedAttempt ? ' bad' : ''),
          text: dash(detail), title: detail || '' }));
    });
    return table('attempts', 'Attempts', ['#', 'Time', 'Outcome', 'Code', 'Latency', 'Error or response'], rows);
  }

  async function retryDelivery(orderId, integrator, button, region) {
    button.disabled = true;
    button.textContent = 'Retrying…';
    try {
      const answer = await api('POST', apiPath`orders/${orderId}/deliveries/${integrator}/retry`);
      const text = 'Retry queued (round ' + dash(answer && answer.round) + '); this page follows it.';
      cardNotes.set(integrator, { kind: 'success', text });
      notice(region, 'success', text);
      soon();
    } catch (error) {
      cardNotes.set(integrator, { kind: 'error', text: 'Retry refused: ' + error.message });
      notice(region, 'error', 'Retry refused: ' + error.message);
      button.disabled = false;
      button.textContent = 'Retry delivery';
    }
  }

  function openCancel() {
    notice(dialogErrors, 'info');
    reason.value = '';
    confirmCancel.disabled = false;
    dialog.showModal();
    keep.focus();
  }

  async function submitCancel(event) {
    event.preventDefault();
    confirmCancel.disabled = true;
    const query = reason.value.trim() ? '?reason=' + encodeURIComponent(reason.value.trim()) : '';
    try {
      await api('DELETE', apiPath`orders/${route.id}` + query);
      dialog.close();
      notice(messages, 'success', 'Order cancelled. Integrators that have it are being told.');
      cancelButton.focus();
      soon();
    } catch (error) {
      notice(dialogErrors, 'error', 'The API refused: ' + error.message);
      confirmCancel.disabled = false;
    }
  }

  function failed(error) {
    notice(loadNotice, 'error', 'Could not load this order: ' + error.message);
  }

  return { title: route.id, load, failed };
}

function backHref() {
  const last = state.orders.filterKey.split('\u0000');
  return ordersHash(last[0] || '', last[1] || '', Number(last[2]) || PAGE_SIZE);
}

// --- integrators --------------------------------------------------------------------------------------------

function integratorsView(route, main) {
  const messages = el('div', { className: 'messages' });
  const loadNotice = el('div', { className: 'messages' });
  const results = el('div', { className: 'results' });

  const since = el('input', { id: 'replay-since', type: 'datetime-local', required: true, step: 60 });
  const replayTitle = el('h2', { id: 'replay-title' });
  const dialogErrors = el('div', { className: 'form-errors' });
  const confirmReplay = el('button', { type: 'submit', className: 'button primary', text: 'Replay' });
  const dialog = el('dialog', { className: 'dialog', 'aria-labelledby': 'replay-title' },
    el('form', { on: { submit: submitReplay } }, replayTitle,
      el('p', { text: 'Every delivery to this integrator that failed between the time below and now is sent '
        + 'again, with its original webhook id so the partner can deduplicate.' }),
      el('label', { htmlFor: 'replay-since', text: 'Failed since (your local time)' }), since,
      dialogErrors,
      el('div', { className: 'dialog-actions' },
        el('button', { type: 'button', className: 'button ghost', text: 'Close', on: { click: () => dialog.close() } }),
        confirmReplay)));
  let replaying = null;

  main.append(
    el('div', { className: 'page-head' }, el('h1', { text: 'Integrators' }),
      el('p', { className: 'muted', text: 'Health over the last hour. A circuit opens after repeated failures; '
        + 'deliveries wait while it is open.' })),
    loadNotice, messages, el('div', { className: 'card flush' }, results), dialog);

  async function load(current) {
    const answer = await api('GET', 'integrators');
    const items = answer.items || [];
    const health = new Map();
    await inBatches(items, DETAIL_CONCURRENCY, async (item) => {
      health.set(item.name, await healthOf(item.name));
    });
    if (!current()) return;
    draw(items, health);
  }

  // Health comes from GET /integrators/{name}/health; a deployment without that route answers 404 (or API
  // Gateway's 403 for an unknown path): the columns show a dash instead of an error, and the route is asked
  // again for that integrator only after HEALTH_RECHECK_MS.
  async function healthOf(name) {
    if (Date.now() < (state.healthMissing.get(name) || 0)) return null;
    try {
      return await api('GET', apiPath`integrators/${name}/health`);
    } catch (error) {
      if (error.status === 401) throw error;
      if (error.status === 403 || error.status === 404) state.healthMissing.set(name, Date.now() + HEALTH_RECHECK_MS);
      return null;
    }
  }

  function draw(items, health) {
    notice(loadNotice, 'info');
    if (!items.length) {
      clear(results).append(el('div', { className: 'empty' },
        el('p', { className: 'empty-title', text: 'No integrators registered.' }),
        el('p', { className: 'muted', text: 'Register one with POST /api/v1/integrators (see the README, API); '
          + 'make run registers three demo partners.' })));
      return;
    }
    clear(results).append(table('integrators-table', 'Integrators and their health',
      ['Integrator', 'Enabled', 'Circuit', 'Success rate', 'p95', 'Waiting', 'Last error', 'Actions'],
      items.map((item) => integratorRow(item, health.get(item.name)))));
  }

  function integratorRow(item, health) {
    const window_ = (health && health.window) || {};
    const toggle = el('button', { type: 'button', className: 'button small ' + (item.enabled ? 'ghost' : 'primary'),
      text: item.enabled ? 'Disable' : 'Enable', dataset: { focusKey: 'toggle-' + item.name },
      on: { click: () => setEnabled(item, !item.enabled, toggle) } });
    const replay = el('button', { type: 'button', className: 'button ghost small', text: 'Replay failed…',
      dataset: { focusKey: 'replay-' + item.name }, on: { click: () => openReplay(item.name) } });
    return el('tr', { dataset: { integrator: item.name } },
      cell('Integrator', null, el('strong', { text: item.name }),
        el('span', { className: 'sub mono', text: item.url }),
        el('span', { className: 'sub', text: (item.events || []).join(', ') })),
      cell('Enabled', null, badge(item.enabled ? 'enabled' : 'disabled')),
      cell('Circuit', { className: 'circuit' },
        health && health.circuit ? badge(health.circuit) : '—',
        health && health.next_probe_at && health.circuit !== 'closed'
          ? el('span', { className: 'sub', text: 'probe ' + formatTime(health.next_probe_at) }) : null),
      cell('Success rate', { className: 'num',
        text: rate(window_.success_rate, window_.attempts) }),
      cell('p95', { className: 'num',
        text: window_.p95_ms === undefined || window_.p95_ms === null ? '—' : Math.round(window_.p95_ms) + ' ms' }),
      cell('Waiting', { className: 'num', text: dash(health && health.waiting) }),
      cell('Last error', { className: 'detail',
        text: health ? describe(health.last_error) : '—' }),
      cell('Actions', null, el('div', { className: 'row-actions' }, toggle, replay)));
  }

  function rate(value, attempts) {
    if (value === undefined || value === null || attempts === 0) return '—';
    const percent = value <= 1 ? value * 100 : value;
    return (Math.round(percent * 10) / 10) + ' %';
  }

  async function setEnabled(item, enabled, button) {
    button.disabled = true;
    try {
      await api('PATCH', apiPath`integrators/${item.name}`, { enabled });
      notice(messages, 'success', item.name + (enabled ? ' enabled: deliveries resume.'
        : ' disabled: no new deliveries are sent to it; waiting retries hold until it is enabled.'));
      soon();
    } catch (error) {
      notice(messages, 'error', 'Could not ' + (enabled ? 'enable ' : 'disable ') + item.name + ': ' + error.message);
      button.disabled = false;
    }
  }

  function openReplay(name) {
    replaying = name;
    replayTitle.textContent = 'Replay failed deliveries to ' + name;
    notice(dialogErrors, 'info');
    confirmReplay.disabled = false;
    const hourAgo = new Date(Date.now() - 3600 * 1000);
    hourAgo.setSeconds(0, 0);
    since.value = localInputValue(hourAgo);
    since.max = localInputValue(new Date());
    dialog.showModal();
    since.focus();
  }

  async function submitReplay(event) {
    event.preventDefault();
    const from = new Date(since.value);
    const until = new Date();
    if (Number.isNaN(from.getTime()) || from >= until) {
      notice(dialogErrors, 'error', 'Choose a time in the past.');
      return;
    }
    confirmReplay.disabled = true;
    try {
      const answer = await api('POST', apiPath`integrators/${replaying}/replay`,
        { since: from.toISOString(), until: until.toISOString() });
      dialog.close();
      const replayed = answer.replayed || [];
      const skipped = answer.skipped || [];
      const parts = [replayed.length
        ? 'Replaying ' + replayed.length + ' failed ' + (replayed.length === 1 ? 'delivery' : 'deliveries')
          + ' to ' + replaying + '.'
        : 'No failed deliveries to ' + replaying + ' in that time.'];
      if (skipped.length) {
        parts.push(' Skipped ' + skipped.length + ': ' + skipped.slice(0, 5)
          .map((s) => s.order_id + ' (' + s.reason + ')').join(', ') + (skipped.length > 5 ? ', …' : '') + '.');
      }
      notice(messages, replayed.length ? 'success' : 'info', ...parts);
      soon();
    } catch (error) {
      notice(dialogErrors, 'error', 'The API refused: ' + error.message);
      confirmReplay.disabled = false;
    }
  }

  function failed(error) {
    notice(loadNotice, 'error', 'Could not load integrators: ' + error.message);
  }

  return { title: 'Integrators', load, failed };
}

// --- start --------------------------------------------------------------------------------------------------

function start() {
  if (!window.location.hash.startsWith('#/')) {
    window.history.replaceState(null, '', '#/orders');
  }
  show(parseRoute());
}

// A module runs once the document is parsed (modules are deferred), so the page's elements are already there.
function init() {
  document.getElementById('sign-out').addEventListener('click', () => signOut());
  document.getElementById('refresh-now').addEventListener('click', () => refresh());
  document.getElementById('skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
  if (state.token) start();
  else renderSignIn();
}

init();
