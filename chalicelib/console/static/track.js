/* The customer's tracking page: the order as the service shows it to a customer, kept live over a WebSocket.
 *
 * The link's token is in the URL's fragment (never sent to a server by the browser). The page reads the order
 * from GET api/v1/track with the token in a header, then opens the WebSocket API with it. Every frame carries a
 * sequence number (the order's version): a frame not newer than what is shown is dropped, so a frame that
 * arrives twice, late or out of order changes nothing. On every (re)connect the page reads the order again, so
 * nothing missed while disconnected stays missing. API Gateway closes connections after 2 hours and after 10
 * idle minutes: the page pings every 5 minutes and reconnects with a growing, jittered delay, saying so. Once the
 * order has ended nothing more can change, and the socket is closed.
 */

import { createApi } from './api.js';
import { el, clear, formatTime } from './dom.js';

const PING_MS = 5 * 60 * 1000;
const MAX_BACKOFF_MS = 30 * 1000;

const main = document.getElementById('main');
const live = document.getElementById('live');
const token = decodeURIComponent(location.hash.replace(/^#/, ''));
const api = createApi({ auth: () => ({ 'X-Tracking-Token': token }) });

let shown = 0; // the version on screen
let socket = null;
let socketUrl = null;
let attempt = 0;
let pinger = null;
let stopped = false;

function say(text, warn) {
  live.textContent = text;
  live.className = 'live' + (warn ? ' warn' : '');
}

function invalid() {
  stopped = true;
  if (socket) socket.close();
  clear(main).append(el('section', { className: 'notice', role: 'alert' },
    el('h1', { text: 'This link is not valid' }),
    el('p', { text: 'It may have expired or been replaced. Please ask the shop for a new tracking link.' })));
  say('');
  document.title = 'Link not valid';
}

function render(order) {
  if (order.version <= shown) return;
  shown = order.version;
  const reached = order.timeline.map((step) => step.status);
  const done = order.steps.filter((step, i) => reached.includes(step)
    || order.steps.slice(i + 1).some((later) => reached.includes(later)));
  const tone = order.ended ? (order.status === 'delivered' ? ' ended-ok' : ' ended-bad') : '';
  const shop = order.shop || {};
  clear(main).append(
    el('section', { className: 'card status' + tone, 'aria-labelledby': 'status-heading' },
      el('p', { className: 'shop', text: `Your order from ${shop.name}` }),
      el('h1', { id: 'status-heading', text: order.label, dataset: { status: order.status } }),
      el('p', { className: 'description', text: order.description }),
      order.eta ? el('p', { className: 'eta', text: 'Expected: ' + formatEta(order.eta) }) : null,
      order.ended && order.status !== 'delivered' ? null : el('ol', { className: 'steps', 'aria-hidden': 'true' },
        order.steps.map((step) => el('li', { className: done.includes(step) ? 'done' : '' })))),
    el('section', { className: 'card', 'aria-labelledby': 'timeline-heading' },
      el('h2', { id: 'timeline-heading', text: 'What happened' }),
      el('ol', { className: 'timeline' }, order.timeline.slice().reverse().map((step) =>
        el('li', {}, el('span', { text: step.label }),
          el('time', { dateTime: step.at, text: formatTime(step.at, true) }))))),
    el('section', { className: 'card', 'aria-labelledby': 'order-heading' },
      el('h2', { id: 'order-heading', text: 'Your order' }),
      el('ul', { className: 'items' }, order.items.map((item) => el('li', { text: item.quantity + ' × ' + item.name }))),
      order.note ? el('p', { className: 'note', text: 'Your note: ' + order.note }) : null,
      el('p', { className: 'ref', text: 'Reference ' + order.reference })),
    el('section', { className: 'card', 'aria-labelledby': 'shop-heading' },
      el('h2', { id: 'shop-heading', text: shop.name }),
      shop.phone ? el('a', { className: 'call', href: 'tel:' + shop.phone.replace(/[^0-9+]/g, ''),
        text: 'Call the shop: ' + shop.phone }) : el('p', { text: 'Contact the shop if you have a question.' })),
  );
  document.title = order.label + ' · ' + shop.name;
  if (order.ended) finish();
}

function formatEta(eta) {
  const when = new Date(eta);
  return Number.isNaN(when.getTime()) ? String(eta) : formatTime(eta, false);
}

function finish() {
  stopped = true;
  clearInterval(pinger);
  if (socket) socket.close();
  say('');
}

async function load() {
  try {
    const data = await api.request('GET', 'track');
    socketUrl = data.live && data.live.url;
    render(data.order);
    return true;
  } catch (error) {
    if (error.status === 404 || error.refused) invalid();
    else say('Could not reach the shop’s service. Retrying…', true);
    return false;
  }
}

function connect() {
  if (stopped || !socketUrl) return;
  const ws = new WebSocket(socketUrl + (socketUrl.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token));
  socket = ws;
  ws.addEventListener('open', () => {
    attempt = 0;
    say('Live: this page updates by itself.');
    clearInterval(pinger);
    pinger = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('{"action":"ping"}'); }, PING_MS);
    load(); // catch up on anything missed while disconnected
  });
  ws.addEventListener('message', (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    if (!frame || typeof frame.seq !== 'number' || frame.seq <= shown) return; // stale or repeated
    if (frame.type === 'order' && frame.order) render(frame.order);
    else load();
  });
  ws.addEventListener('close', () => {
    clearInterval(pinger);
    if (socket !== ws || stopped) return;
    socket = null;
    attempt += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
    say('Reconnecting…', true);
    setTimeout(async () => {
      // A refused handshake looks like any dropped connection: ask the API whether the link still holds.
      if (attempt > 1 && !(await load())) { if (!stopped) setTimeout(connect, delay); return; }
      connect();
    }, delay);
  });
}

async function start() {
  if (!token) { invalid(); return; }
  if (await load()) connect();
  else if (!stopped) setTimeout(start, 5000);
}

start();
