// HTTP access to the StackWatch API for the built-in page.
//
// The API lives one level above the page (the page is served at <base>/ui/), so every URL is
// resolved against that base: the page keeps working behind a reverse proxy with a prefix.
// Outside demo mode the data endpoints need an API key, sent as `Authorization: Bearer`; the
// key is kept in sessionStorage (this tab only, gone when it closes), never in a cookie.

const KEY_STORAGE = "stackwatch.apiKey";
let memoryKey = null; // when sessionStorage is unavailable

export const API_BASE = new URL("../", document.baseURI);

/** An error answer of the API (every error has the shape {error: {code, message}}). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

/** The request needs an API key (none stored, or the stored one was refused). */
export class AuthRequiredError extends ApiError {
  constructor(message) {
    super(401, "unauthorized", message);
    this.name = "AuthRequiredError";
  }
}

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled: the page still works in demo mode
  }
}

export function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: the key lives only as long as this page
  }
  memoryKey = key || null;
}

function currentKey() {
  return storedKey() ?? memoryKey;
}

/** Headers of every request: the bearer key when one is known. */
export function authHeaders() {
  const key = currentKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function apiUrl(path, params = {}) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

function retryAfter(response) {
  const value = Number(response.headers.get("Retry-After"));
  return Number.isFinite(value) && value > 0 ? value : null;
}

/** The ApiError for a non-2xx response (its JSON error body when there is one). */
export async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // not JSON (a proxy's error page): keep the status line
  }
  if (response.status === 401) return new AuthRequiredError(message);
  return new ApiError(response.status, code, message, retryAfter(response));
}

/**
 * Fetch a JSON document. `okStatuses` lists non-2xx statuses whose body is still the answer
 * (health answers 503 with its components when degraded).
 */
export async function getJson(path, params = {}, { signal, okStatuses = [] } = {}) {
  const response = await fetch(apiUrl(path, params), {
    headers: { Accept: "application/json", ...authHeaders() },
    cache: "no-store",
    signal,
  });
  if (!response.ok && !okStatuses.includes(response.status)) throw await errorOf(response);
  return response.json();
}

export async function postJson(path, body) {
  const response = await fetch(apiUrl(path), {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(body),
    cache: "no-store",
  });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}
