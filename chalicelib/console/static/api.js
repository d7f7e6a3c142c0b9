/* One client for order-relay's /api/v1, shared by every page the service serves (the console today; the
 * customer tracking page and the integrator portal later).
 *
 * Where it lives: next to the console, at <stage>/console/api.js, on the console's allow-list. Another page loads
 * its own module with a relative URL and imports this one relatively (a module at /console/track.js imports
 * './api.js'; one served elsewhere imports '../console/api.js'), so every URL keeps an API Gateway stage prefix.
 *
 * The API base is found from this module's own URL (../api/v1/ from .../console/api.js), not from the page's,
 * so it is right whatever the page's path. The credential is the caller's business: `auth` is a function that
 * answers the headers to send (a bearer admin token from sessionStorage in the console, a capability token on a
 * tracking page), asked on every request so a sign-out or a new token takes effect at once. Credentials travel
 * in headers only, never in a URL: URLs end up in logs, histories and Referer headers.
 */

export const API_BASE = new URL('../api/v1/', import.meta.url).href;

/** An answer that was not a success, in the service's error shape {"error": {"code", "message", "details"}}. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || [];
  }

  /** The credential was refused: missing, wrong, revoked or expired (401), or not allowed here (403). What to
   * do about it is the page's call (the console signs out; a tracking page shows one neutral message). */
  get refused() {
    return this.status === 401 || this.status === 403;
  }
}

/** The ApiError for a failed answer; field-level details are folded into the message, so showing
 * `error.message` tells the user which field was wrong. API Gateway's own answers ({"message": ...}, e.g. a
 * 403 for a route that does not exist) get the code 'gateway'. */
export function errorFrom(status, data) {
  if (data && data.error) {
    const details = Array.isArray(data.error.details) ? data.error.details : [];
    const parts = details.map((d) => (d.field ? d.field + ': ' : '') + (d.message || '')).filter(Boolean);
    const message = (data.error.message || 'the API answered HTTP ' + status)
      + (parts.length ? ' (' + parts.join('; ') + ')' : '');
    return new ApiError(status, data.error.code || 'error', message, details);
  }
  const message = (data && (data.message || data.Message)) || 'the API answered HTTP ' + status;
  return new ApiError(status, 'gateway', message);
}

/** The headers that carry a bearer token (none without one): `auth: () => bearer(currentToken)`. */
export function bearer(token) {
  return token ? { Authorization: 'Bearer ' + token } : {};
}

/** A path with every interpolated value URL-encoded: apiPath`orders/${id}/deliveries/${name}/retry`. */
export function apiPath(strings, ...values) {
  return strings.reduce((path, part, i) => path + encodeURIComponent(values[i - 1]) + part);
}

/**
 * createApi({ auth }) answers `request(method, path, body?, options?)`: the parsed JSON answer (null for an
 * empty one), or a thrown ApiError, also for a network failure (status 0, code 'network').
 *   auth     () => headers for every request; options.auth replaces it for one request.
 *   base     the API root, API_BASE unless given.
 */
export function createApi({ auth, base = API_BASE }) {
  async function request(method, path, body, options = {}) {
    const headers = { Accept: 'application/json', ...(options.auth || auth)() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(base + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'omit', redirect: 'error',
      });
    } catch (error) {
      throw new ApiError(0, 'network', 'Could not reach the API (' + error.message + '). Is the service running?');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!response.ok) throw errorFrom(response.status, data);
    return data;
  }

  return { request, base };
}

/** Runs `work` over `items`, at most `limit` at a time: a page of orders must not open twenty requests at once. */
export async function inBatches(items, limit, work) {
  const queue = items.slice();
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await work(queue.shift());
  });
  await Promise.all(workers);
}
