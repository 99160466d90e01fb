// The page's controller: URL state <-> views. Every view is reached through `go`, which records the state
// in the URL (history.pushState / replaceState) and renders it; the back button renders the state it
// returns to.

import { getInfo } from "./api.js";
import { setupKeyForm, takeKeyFromFragment } from "./auth.js";
import { createCatalog } from "./catalog.js";
import { createChips } from "./chips.js";
import { debounce, fill, fmt, h } from "./dom.js";
import { createFilters } from "./filters.js";
import { createItemView } from "./item.js";
import { createPicking } from "./picking.js";
import { createReview } from "./review.js";
import { describe, fetchPage, gridKeys, renderEmpty, renderPage } from "./results.js";
import { hasFilters, hasQuery, lessState, likeUrl, moreState, parseState, recommending, searchKey, toUrl } from "./state.js";
import { recallImage, rememberImage } from "./uploads.js";

takeKeyFromFragment(); // before the URL is read below: a key given as #key=... never stays in the address

const $ = (selector) => document.querySelector(selector);
setupKeyForm($("#key-form"), $("#forget-key"));
const ui = {
  form: $("#search-form"),
  q: $("#q"),
  not: $("#not"),
  mode: $("#mode"),
  pick: $("#pick-image"),
  file: $("#image-file"),
  chips: $("#query-chips"),
  skipped: $("#skipped"),
  picking: $("#picking"),
  status: $("#status"),
  error: $("#error"),
  grid: $("#results"),
  pager: $("#pager"),
  filtersPanel: $("#filters-panel"),
  filtersSummary: $("#filters-summary"),
  filtersBody: $("#filters-body"),
  clearFilters: $("#clear-filters"),
  searchView: $("#search-view"),
  catalogView: $("#catalog-view"),
  reviewView: $("#review-view"),
  dialog: $("#item-dialog"),
  drop: $("#drop-overlay"),
  resultsHeading: $("#results-heading"),
};

let state = parseState(location.href);
let info = null;
let filters = null;
let catalog = null;
let review = null;
let lastSearch = null;
let searchController = null;
let closingItem = false; // the item view was closed: the history entry we go back to must show no item

const noFilters = { cat: [], min: null, max: null, attr: [] };
const itemHref = (id) => toUrl({ ...state, item: id });
const likeHref = (id) => likeUrl(state, id);
const reviewHref = (tag) => toUrl({ ...state, view: "review", tag, item: "" });

/**
 * Move to a new state. `replace` rewrites the current history entry instead of adding one; `typing` marks
 * an entry made while typing, so that the following keystrokes rewrite it rather than pile up entries.
 */
function go(next, { replace = false, typing = false } = {}) {
  if (!typing) typed.cancel(); // this state already says what the fields should hold
  const previous = history.state || {};
  const depth = next.item ? (state.item ? (previous.itemDepth || 0) + (replace ? 0 : 1) : replace ? 0 : 1) : 0;
  const entry = { typing, itemDepth: depth };
  const url = toUrl(next);
  if (replace) history.replaceState(entry, "", url);
  else history.pushState(entry, "", url);
  render(next);
}

/** A new search from the current one: words still being typed are part of it. */
function change(fields, options) {
  go({ ...state, q: ui.q.value, not: ui.not.value, item: "", page: 1, ...fields }, options);
}

function render(next) {
  const previous = state;
  state = next;
  const inCatalog = next.view === "catalog";
  const inReview = next.view === "review";
  ui.searchView.hidden = inCatalog || inReview;
  ui.catalogView.hidden = !inCatalog;
  ui.reviewView.hidden = !inReview;
  for (const link of document.querySelectorAll(".views a")) {
    // The review screen is part of the catalog view.
    if (link.dataset.view === (inReview ? "catalog" : next.view)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (inReview) {
    if (!review) {
      review = createReview(ui.reviewView, {
        itemHref,
        onAttribute: (tag) => go({ ...state, tag, item: "" }),
        active: () => state.view === "review" && !ui.dialog.open,
      });
    } else if (previous.view !== "review") {
      review.reset(); // decisions made elsewhere meanwhile: start a fresh pass
    }
    review.show(next.tag);
    document.title = "Review tags · catalens";
  } else if (inCatalog) {
    if (!catalog) {
      catalog = createCatalog(ui.catalogView, { itemHref, reviewHref });
      catalog.refresh();
    } else if (previous.view !== "catalog") {
      catalog.refresh();
    }
    document.title = "Catalog · catalens";
  } else {
    syncForm(next);
    filters?.sync(next);
    const key = searchKey(next);
    if (key !== lastSearch) {
      lastSearch = key;
      runSearch(next);
    }
    document.title = next.q.trim() ? `${next.q.trim()} · catalens` : "catalens";
    // The Search tab leads back to this search from the catalog page.
    document.querySelector('.views a[data-view="search"]').href = toUrl({ ...next, item: "" });
  }
  if (next.item) itemView.open(next.item);
  else itemView.close();
}

function syncForm(next) {
  if (ui.q.value.trim() !== next.q.trim()) ui.q.value = next.q;
  if (ui.not.value.trim() !== next.not.trim()) ui.not.value = next.not;
  ui.mode.value = next.mode;
  ui.mode.disabled = recommending(next); // a recommendation ranks by pictures
  ui.q.placeholder = next.img || next.like || recommending(next) ? "Refine with words, e.g. in red" : "Search products, e.g. red running shoe";
  const active = next.cat.length + next.attr.length + (next.min !== null || next.max !== null ? 1 : 0);
  ui.filtersSummary.textContent = active ? `Filters (${active})` : "Filters";
  ui.clearFilters.hidden = !active;
  chips.render(next);
}

function showError(message, retry) {
  ui.error.hidden = false;
  fill(
    ui.error,
    h("p", {}, message),
    retry ? h("button", { type: "button", on: { click: retry } }, "Try again") : null,
  );
}

function clearError() {
  ui.error.hidden = true;
  fill(ui.error);
}

function renderLanding() {
  fill(ui.pager);
  ui.status.textContent = "";
  const categories = info?.facets.category || [];
  fill(
    ui.grid,
    h(
      "li",
      { class: "landing" },
      h("p", {}, "Search by words, or by picture: pick, drop or paste an image."),
      categories.length
        ? h(
            "p",
            { class: "browse" },
            "Or browse: ",
            categories.slice(0, 12).map((f) => h("a", { href: toUrl({ ...state, cat: [f.value], page: 1 }), dataset: { route: "" } }, f.value)),
          )
        : null,
    ),
  );
}

async function runSearch(target) {
  searchController?.abort();
  const controller = new AbortController();
  searchController = controller;
  clearError();
  chips.showSkipped([]);
  if (!hasQuery(target) && !hasFilters(target)) {
    renderLanding();
    return;
  }
  const image = target.img ? recallImage(target.img) : null;
  if (target.img && !image) {
    fill(ui.grid);
    fill(ui.pager);
    ui.status.textContent = "";
    showError("The image this search was made with is not in this browser tab any more. Pick, drop or paste it again.");
    return;
  }
  ui.grid.setAttribute("aria-busy", "true");
  ui.grid.classList.add("loading");
  ui.status.textContent = "Searching…";
  try {
    const page = await fetchPage(target, image, controller.signal);
    if (controller !== searchController) return;
    if (page.hits.length) renderPage(ui.grid, ui.pager, target, page, picking.picked);
    else renderEmpty(ui.grid, ui.pager, target, () => change(noFilters));
    chips.showSkipped(page.skipped || []);
    ui.status.textContent = describe(target, page);
  } catch (error) {
    if (error.name === "AbortError" || controller !== searchController) return;
    fill(ui.grid);
    fill(ui.pager);
    ui.status.textContent = "The search failed.";
    showError(error.message, () => {
      lastSearch = null;
      render(state);
    });
  } finally {
    if (controller === searchController) {
      ui.grid.setAttribute("aria-busy", "false");
      ui.grid.classList.remove("loading");
    }
  }
}

const chips = createChips(ui.chips, ui.skipped, { change: (fields) => change(fields) });
const picking = createPicking(ui.grid, ui.picking, {
  onMore: (ids) => pickedUsed(moreState(state, ids)),
  onLess: (ids) => pickedUsed(lessState({ ...state, q: ui.q.value, not: ui.not.value }, ids)),
  remember: chips.remember,
});

/** The picked items became examples: show the new results, and move focus there (the picking bar is gone). */
function pickedUsed(next) {
  go(next);
  requestAnimationFrame(() => ui.resultsHeading.focus());
}

const itemView = createItemView(ui.dialog, {
  labels: () => (info?.facets.category || []).map((f) => f.value),
  categories: () => info?.facets.category || null,
  itemHref: (id) => toUrl({ ...state, item: id }),
  likeHref,
  onClose() {
    const closed = state.item;
    const depth = history.state?.itemDepth || 0;
    if (depth > 0) {
      closingItem = true;
      history.go(-depth);
    } else {
      go({ ...state, item: "" }, { replace: true });
    }
    // Focus goes back to the result the item was opened from.
    requestAnimationFrame(() => {
      if (document.activeElement === document.body || !document.activeElement) {
        [...document.querySelectorAll(".card-link")].find((link) => link.dataset.item === closed)?.focus();
      }
    });
  },
});

// -- images: pick, drop, paste ---------------------------------------------------------------------------

async function useImage(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showError(`“${file.name || "That file"}” is not an image. Use a JPEG, PNG, WebP, GIF, BMP or TIFF file.`);
    return;
  }
  const limit = info?.limits?.max_upload_bytes;
  if (limit && file.size > limit) {
    const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    showError(`The image is ${mb(file.size)}; the service takes images up to ${mb(limit)}.`);
    return;
  }
  const token = await rememberImage(file);
  change({ view: "search", img: token, like: "" });
}

ui.pick.addEventListener("click", () => ui.file.click());
ui.file.addEventListener("change", () => {
  useImage(ui.file.files[0]);
  ui.file.value = "";
});

let dragDepth = 0;
const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  ui.drop.hidden = false;
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) ui.drop.hidden = true;
});
document.addEventListener("dragover", (event) => {
  if (carriesFiles(event)) event.preventDefault();
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  ui.drop.hidden = true;
  useImage(event.dataTransfer.files[0]);
});
document.addEventListener("paste", (event) => {
  const file = [...(event.clipboardData?.items || [])].find((i) => i.kind === "file" && i.type.startsWith("image/"))?.getAsFile();
  if (!file) return; // plain text pastes into the field as usual
  event.preventDefault();
  useImage(file);
});

// -- typing, the form and links --------------------------------------------------------------------------

const typed = debounce(() => {
  change({ q: ui.q.value, not: ui.not.value }, { replace: Boolean(history.state?.typing), typing: true });
}, 300);
ui.q.addEventListener("input", typed);
ui.not.addEventListener("input", typed);

// Ending a typing session (Enter, leaving the field) keeps its query as one history entry.
function endTyping() {
  if (history.state?.typing) history.replaceState({ ...history.state, typing: false }, "", location.href);
}
ui.q.addEventListener("blur", endTyping);
ui.not.addEventListener("blur", endTyping);

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  typed.cancel();
  const next = { ...state, q: ui.q.value, not: ui.not.value, page: 1, item: "" };
  if (toUrl(next) === toUrl(state)) lastSearch = null; // the same search again: run it again
  go(next, { replace: Boolean(history.state?.typing) || toUrl(next) === toUrl(state) });
  endTyping();
});
ui.mode.addEventListener("change", () => change({ mode: ui.mode.value }));
ui.clearFilters.addEventListener("click", () => change(noFilters));

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-route]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  go(parseState(link.href));
});

window.addEventListener("popstate", () => {
  typed.cancel();
  let next = parseState(location.href);
  if (closingItem && next.item) {
    // Items were opened one from another, starting from a shared item URL: close that one too.
    next = { ...next, item: "" };
    history.replaceState({ typing: false, itemDepth: 0 }, "", toUrl(next));
  }
  closingItem = false;
  render(next);
});

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const editing = target.closest?.("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !editing && !ui.dialog.open && state.view === "search") {
    event.preventDefault();
    ui.q.focus();
    ui.q.select();
  } else if (event.key === "ArrowDown" && target === ui.q) {
    const first = ui.grid.querySelector(".card-link");
    if (first) {
      event.preventDefault();
      first.focus();
    }
  }
});
ui.grid.addEventListener("keydown", gridKeys);
ui.dialog.addEventListener("keydown", gridKeys);
ui.pager.addEventListener("click", () => requestAnimationFrame(() => ui.resultsHeading.focus()));

// -- start -----------------------------------------------------------------------------------------------

if (matchMedia("(max-width: 720px)").matches) ui.filtersPanel.open = false;
history.replaceState({ typing: false, itemDepth: 0 }, "", location.href);
render(state);
if (!state.q && state.view === "search" && !state.item) ui.q.focus();

getInfo(0).then(
  (answer) => {
    info = answer;
    filters = createFilters(ui.filtersBody, info, (fields) => change(fields));
    filters.sync(state);
    if (!hasQuery(state) && !hasFilters(state)) renderLanding();
    const indexed = info.items.indexed ?? 0;
    ui.q.setAttribute("aria-description", `${fmt.count(indexed)} items in the catalog`);
  },
  (error) => fill(ui.filtersBody, h("p", { class: "error" }, `Filters are not available. ${error.message}`)),
);
