// Small DOM helpers. Every string from the service is inserted as text (text nodes, attributes), never as
// HTML; the one exception, the service's <mark> snippets, is parsed by `marked` into text nodes and <mark>
// elements, so no string ever reaches innerHTML.

import { retryWithKey } from "./auth.js";

/**
 * Build an element: h("a", {href: "?q=x", class: "link"}, "text", child).
 * Attributes: `class`, `dataset` (object), `on` (object of event handlers), booleans (true sets the
 * attribute, false/null/undefined leaves it out), anything else via setAttribute. Children: nodes,
 * strings and numbers (as text), arrays (flattened), null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children (strings become text). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

function unescape(text) {
  return text.replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (e) => ENTITIES[e]);
}

/**
 * A fragment from a service snippet: HTML-escaped text with matched words in <mark>...</mark>.
 * Only <mark> becomes an element; every other character is text, so a snippet cannot inject markup.
 */
export function marked(snippet) {
  const fragment = document.createDocumentFragment();
  let inMark = false;
  for (const part of String(snippet).split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") inMark = true;
    else if (part === "</mark>") inMark = false;
    else if (part) fragment.append(inMark ? h("mark", {}, unescape(part)) : unescape(part));
  }
  return fragment;
}

const priceFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const percentFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });
const scoreFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
const countFormat = new Intl.NumberFormat();

export const fmt = {
  price: (value) => (value === null || value === undefined ? "" : priceFormat.format(value)),
  percent: (value) => percentFormat.format(value),
  score: (value) => (value === null || value === undefined ? "–" : scoreFormat.format(value)),
  count: (value) => countFormat.format(value),
};

const FIELD_LABELS = { color: "Colour", product_id: "Product" };

/** A readable name for a field or attribute name: "product_type" -> "Product type". */
export function fieldLabel(name) {
  const text = FIELD_LABELS[name] || name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Call `fn` once `ms` milliseconds have passed without another call; `.cancel()` drops a pending call. */
export function debounce(fn, ms) {
  let timer = 0;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * An image that shows a neutral placeholder instead of a broken-image icon when it cannot load. Where reads
 * need a key, a failed load is retried with the page's key (an <img> cannot send one itself).
 */
export function thumb(src, alt, size, extra = {}) {
  const img = h("img", { src, alt, width: size, height: size, loading: "lazy", decoding: "async", ...extra });
  img.addEventListener("error", () => retryWithKey(img) || img.classList.add("broken"), { once: true });
  return img;
}

/** Add `?size=` to a thumbnail URL from the service. */
export function thumbnailUrl(url, size) {
  return `${url}${url.includes("?") ? "&" : "?"}size=${size}`;
}
