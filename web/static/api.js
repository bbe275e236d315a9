// The REST API: JSON in and out, If-Match for conditional changes, the server's error
// shape turned into APIError, and the access token (kept in sessionStorage) when the
// server asks for one.

const TOKEN_KEY = 'taskhub.token';

/** token returns the access token of this tab, or "". */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

/** setToken keeps t for this tab; "" forgets it. */
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** APIError is a refused request: the HTTP status and the server's code, message and field. */
export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the server answered ${status}`);
    this.name = 'APIError';
    this.status = status;
    this.code = e.code || '';
    this.field = e.field || '';
  }
}

/**
 * api sends one request. body (if any) goes as JSON; version makes the change
 * conditional (If-Match: "v<version>"). It resolves to the decoded answer (null for 204)
 * and rejects with APIError for any non-2xx answer, or TypeError when the server
 * cannot be reached.
 */
export async function api(method, path, { body, version } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) {
    headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
  }
  if (version) headers['If-Match'] = `"v${version}"`;
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = resp.status === 204 ? '' : await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}
