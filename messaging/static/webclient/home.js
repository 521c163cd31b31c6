// Going home (docs/protocol.md §2b): a user whose home is another data centre is
// answered 421 `home_elsewhere` (login, any HTTP call with their ticket) or gets a
// `home` frame on the websocket. A page cannot take its session to another origin
// (localStorage is per origin, and a ticket never travels in a URL), so the web
// client goes to the home's own web client: a full navigation to the origin of
// the home's first HTTP endpoint, with the login identifier and the data centre
// in the URL's fragment (never sent to any server), where the user logs in again.
//
// No loops: never to the origin the page is on, and a page that was itself just
// sent home does not send anyone away again by itself (only a login the user
// submits may).

const IDENTIFIER_MAX = 254;
const DATACENTER_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Where the page was sent from, read (and removed from the address) once at load. */
export const arrival = readArrival();

function readArrival() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const datacenter = fragment.get("home");
  if (!datacenter || !DATACENTER_PATTERN.test(datacenter)) return null;
  const identifier = (fragment.get("login") || "").slice(0, IDENTIFIER_MAX);
  // The identifier leaves the address bar (and the history entry) at once.
  history.replaceState(history.state, "", location.pathname + location.search);
  return { datacenter, identifier };
}

/**
 * The home web client's address for a `home_elsewhere` answer's details (or a
 * `home` frame's `http_endpoints`), or null when there is nowhere else to go:
 * no usable endpoint, or only this page's own origin.
 */
export function homeAddress(datacenter, endpoints, identifier) {
  if (typeof datacenter !== "string" || !DATACENTER_PATTERN.test(datacenter)) return null;
  for (const endpoint of Array.isArray(endpoints) ? endpoints : []) {
    let url;
    try {
      url = new URL(String(endpoint));
    } catch {
      continue;
    }
    if ((url.protocol !== "https:" && url.protocol !== "http:") || url.origin === location.origin) {
      continue;
    }
    const fragment = new URLSearchParams({ home: datacenter });
    if (identifier) fragment.set("login", String(identifier).slice(0, IDENTIFIER_MAX));
    return `${url.origin}/#${fragment}`;
  }
  return null;
}

/**
 * Go to the home web client. `automatic`: not answering the user's own login
 * (a `home` frame, a 421 to a stored session); a page that was just sent here
 * does not do that (two misconfigured data centres would send it back and
 * forth). Returns the address it goes to, or null when it stays.
 */
export function goHome({ datacenter, endpoints, identifier = "", automatic = false }) {
  if (automatic && arrival) return null;
  const address = homeAddress(datacenter, endpoints, identifier);
  if (address) location.assign(address);
  return address;
}
