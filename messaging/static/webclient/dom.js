// DOM helpers. User data only ever reaches the page as text nodes or attribute
// values set through the DOM API: nothing here parses HTML.

/**
 * Create an element: h("div", {class: "x", dataset: {testid: "y"}, onclick}, child, ...).
 * Children are nodes, strings (inserted as text), arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "testid") node.dataset.testid = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/**
 * Keyed list rendering: reuse each item's element between renders (so hover,
 * focus and scroll survive), create new ones, drop stale ones, keep order.
 */
export function renderKeyed(container, items, keyOf, create, update) {
  const previous = container.__keyed || new Map();
  const next = new Map();
  let cursor = container.firstChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = previous.get(key);
    if (node) update(node, item);
    else node = create(item);
    next.set(key, node);
    if (node !== cursor) container.insertBefore(node, cursor);
    else cursor = cursor.nextSibling;
  }
  for (const [key, node] of previous) {
    if (!next.has(key)) node.remove();
  }
  container.__keyed = next;
}

/** A stable colour for someone's initial-letter avatar. */
const AVATAR_COLOURS = ["#5b8ff9", "#61ddaa", "#f6bd16", "#7262fd", "#78d3f8",
  "#9661bc", "#f6903d", "#008685", "#f08bb4", "#e8684a"];

export function avatar(name, seed, { size = 40, url = null, group = false } = {}) {
  const box = h("span", {
    class: `avatar${group ? " avatar-group" : ""}`,
    style: { width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.42)}px` },
    "aria-hidden": "true",
  });
  if (url) {
    box.append(h("img", { src: url, alt: "" }));
  } else {
    box.style.background = avatarColour(seed);
    box.dataset.colour = box.style.background;
    box.textContent = initial(name);
  }
  return box;
}

/**
 * One account, one colour, wherever it is drawn: the colour comes from the id's
 * decimal text (a number or a string, as different endpoints send it), hashed.
 */
export function avatarColour(seed) {
  const text = String(seed === null || seed === undefined ? "" : seed).trim();
  let hash = 0;
  for (const ch of text) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return AVATAR_COLOURS[hash % AVATAR_COLOURS.length];
}

export function initial(name) {
  const text = String(name || "?").trim();
  return text ? Array.from(text)[0].toUpperCase() : "?";
}

// Line icons (24×24 paths), drawn as inline SVG: no icon font, no emoji font needed.
const ICONS = {
  chats: "M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.5 4v-4A2.5 2.5 0 0 1 3 13.5v-8z",
  contacts: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 14 0",
  logout: "M12 3v8M7.05 6.05a7 7 0 1 0 9.9 0",
  plus: "M12 5v14M5 12h14",
  search: "M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM15.5 15.5 20 20",
  profile: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 14 0M4 4h4M4 7h2",
  addUser: "M10 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 12.5-4.3M19 14v6M16 17h6",
  wave: "M7 11V6.5a1.5 1.5 0 0 1 3 0V11m0-1V4.5a1.5 1.5 0 0 1 3 0V11m0-1V5.5a1.5 1.5 0 0 1 3 0V13m0-3.5a1.5 1.5 0 0 1 3 0V15a6 6 0 0 1-6 6h-1a6 6 0 0 1-5.2-3L4.2 13.6a1.5 1.5 0 0 1 2.6-1.5L7 12.5",
  group: "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zm-6 9a6 6 0 0 1 12 0m1.5-9a3 3 0 1 0-1.2-5.8M17 14.3A5.5 5.5 0 0 1 21 20",
  shake: "M9 3h6a1.5 1.5 0 0 1 1.5 1.5v15A1.5 1.5 0 0 1 15 21H9a1.5 1.5 0 0 1-1.5-1.5v-15A1.5 1.5 0 0 1 9 3zM11 18h2M4 8.5l-1.5 3.5L4 15.5M20 8.5l1.5 3.5-1.5 3.5",
  wallet: "M3 7.5A2.5 2.5 0 0 1 5.5 5H18a1 1 0 0 1 1 1v2.5M3 7.5V18a2 2 0 0 0 2 2h14a1 1 0 0 0 1-1v-9.5a1 1 0 0 0-1-1H5.5A2.5 2.5 0 0 1 3 7.5zM16 14h.01",
  file: "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8l-5-5zm0 0v5h5",
  logo: "M9.5 4C5.4 4 2 6.8 2 10.2c0 1.9 1.1 3.7 2.8 4.8L4.2 17l2.5-1.3c.9.3 1.8.4 2.8.4h.4a5.6 5.6 0 0 1-.2-1.4c0-3.3 3.2-6 7.1-6h.5C16.6 5.9 13.4 4 9.5 4zM16.8 10c-3.4 0-6.1 2.3-6.1 5s2.7 5 6.1 5c.7 0 1.4-.1 2-.3l2 1-.5-1.7c1.5-.9 2.6-2.4 2.6-4 0-2.7-2.7-5-6.1-5z",
};

export function icon(name, size = 22) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon icon-${name}`);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || ICONS.chats);
  svg.append(path);
  return svg;
}
