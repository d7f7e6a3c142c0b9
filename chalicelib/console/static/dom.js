/* Rendering helpers shared by the service's pages (served at <stage>/console/dom.js; see api.js for where the
 * shared modules live and how another page imports them).
 *
 * Text only, by construction: every value reaches the page through textContent, text nodes or element
 * properties, never through an HTML parser, so an order note of <img src=x onerror=...> shows those characters.
 * No module of these pages may use an HTML sink at all (tests/unit/test_console_modules.py lists them and reads
 * every module).
 */

/** How a status looks: ok, bad, warn, muted, anything else info. */
export const TONES = {
  delivered: 'ok', closed: 'ok', enabled: 'ok', acknowledged: 'ok',
  failed: 'bad', rejected: 'bad', expired: 'bad', open: 'bad', overdue: 'bad', disabled: 'muted',
  pending: 'warn', retrying: 'warn', waiting: 'warn', half_open: 'warn', retry: 'warn', late: 'warn',
  cancelled: 'muted', superseded: 'muted',
};

/** el('a', { href, className, text, dataset, on: { click } }, ...children): an element whose text, attributes
 * and children are set as text or nodes. A prop that is null, undefined or false is left out. */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'className') node.className = value;
    else if (key === 'on') for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'htmlFor') node.htmlFor = value;
    else if (typeof value !== 'string' && key in node) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends nodes, and anything else as a text node; null, undefined and false are skipped, arrays flattened. */
export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** A missing value as an em dash, anything else as text. */
export function dash(value) {
  return value === undefined || value === null || value === '' ? '—' : String(value);
}

/** A status as a coloured badge ('picked_up' reads 'picked up'). */
export function badge(value, label, tones = TONES) {
  const text = dash(value);
  return el('span', { className: 'badge tone-' + (tones[text] || 'info'), text: label || text.replace(/_/g, ' ') });
}

/** A table cell whose content sits in one box: on a phone each cell is a "label | value" row. */
export function cell(label, props, ...children) {
  const options = props || {};
  const inner = el('div', { className: options.className, text: options.text, title: options.title }, ...children);
  return el('td', { dataset: { label } }, inner);
}

/** A table with a caption for screen readers, one header row and the given rows (from cell()). */
export function table(className, caption, headers, rows) {
  return el('table', { className: 'table ' + className },
    el('caption', { className: 'visually-hidden', text: caption }),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows));
}

/** Today's times as 14:05:09, older ones with their date (and year when not this year). */
export function formatTime(iso, withDate) {
  if (!iso) return '—';
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  const clock = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
  if (!withDate && when.toDateString() === new Date().toDateString()) {
    return when.toLocaleTimeString(undefined, clock);
  }
  const year = when.getFullYear() === new Date().getFullYear() ? {} : { year: 'numeric' };
  return when.toLocaleString(undefined, { month: 'short', day: 'numeric', ...year, ...clock });
}

export function ago(iso) {
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return Math.max(seconds, 0) + ' s ago';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min ago';
  if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ago';
  return Math.floor(seconds / 86400) + ' d ago';
}

/** A <time> showing formatTime(), with the exact ISO time in its title. */
export function timeTag(iso, withDate) {
  return el('time', { dateTime: iso || '', text: formatTime(iso, withDate), title: iso || '' });
}

/** The value a datetime-local input takes for `date` in the browser's time zone. */
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T'
    + pad(date.getHours()) + ':' + pad(date.getMinutes());
}

/** Text on one line, cut to `length` characters with an ellipsis. */
export function excerpt(text, length) {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > length ? flat.slice(0, length - 1) + '…' : flat;
}

/** An error value as words: its message when it has one, else its JSON. */
export function describe(value) {
  if (value === undefined || value === null || value === '') return '—';
  if (typeof value === 'object') return value.message ? String(value.message) : JSON.stringify(value);
  return String(value);
}

/** Replaces what `region` says: an alert for an error, a status otherwise; no message empties it. */
export function notice(region, kind, ...message) {
  clear(region);
  if (!message.length) return;
  region.append(el('div', { className: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' }, ...message));
}
