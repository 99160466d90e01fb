// The result list: running a search for a state, the card grid, explanations, paging and arrow keys.

import { getSimilar, searchCombined, searchImage, searchText } from "./api.js";
import { fill, fmt, h, marked, thumb, thumbnailUrl } from "./dom.js";
import { createRecommender, describeExamples } from "./recommend.js";
import { browseText, filterBody, filterParams, hasFilters, lessState, likeUrl, recommending, toUrl } from "./state.js";

const THUMB = 256;
const fetchRecommendation = createRecommender();

/**
 * Fetch one page of results for a state.
 * A text-only query uses GET /v1/search (cacheable, shareable); words to avoid or a stored item use the
 * combined POST /v1/search; an uploaded image uses POST /v1/search/image; "more like this" alone uses
 * /similar. Filters without a query browse: the chosen category or attribute names are the query. A state with
 * examples (?more=, ?less=) is a recommendation: POST /v1/recommend (recommend.js).
 * One extra hit is asked for to know whether a next page exists; the item "more like this" starts from is
 * excluded by the service (/similar and exclude_ids), so pages never repeat or skip a hit.
 */
export async function fetchPage(state, image, signal) {
  if (recommending(state)) return fetchRecommendation(state, image, signal);
  const k = state.k + 1;
  const offset = (state.page - 1) * state.k;
  const q = state.q.trim();
  const not = state.not.trim();
  const common = { k, offset, explain: true };
  let answer;
  if (state.img) {
    answer = await searchImage(image, { ...common, text: q, negative: not, mode: state.mode, ...filterParams(state) }, signal);
  } else if (state.like && !q && !not) {
    answer = await getSimilar(state.like, { ...common, ...filterParams(state) }, signal);
  } else if (state.like || not) {
    const parts = [];
    if (state.like) parts.push({ item_id: state.like, weight: 1 });
    if (not) parts.push({ text: not, weight: -1 });
    // The liked item is excluded by the service, so pages stay exact.
    const body = { ...common, parts, filters: filterBody(state), mode: state.mode, exclude_ids: state.like ? [state.like] : [] };
    if (q) body.query = q;
    answer = await searchCombined(body, signal);
  } else if (q) {
    answer = await searchText(q, { ...common, mode: state.mode, ...filterParams(state) }, signal);
  } else {
    answer = await searchText(browseText(state), { ...common, mode: "vector", ...filterParams(state) }, signal);
  }
  const hits = answer.hits;
  return { hits: hits.slice(0, state.k), more: hits.length > state.k, offset };
}

/** What the status line says about a finished search. */
export function describe(state, page) {
  const what = [];
  if (state.img) what.push("your image");
  if (state.like) what.push("items like the chosen one");
  if (state.q.trim()) what.push(`“${state.q.trim()}”`);
  if (state.not.trim()) what.push(`without “${state.not.trim()}”`);
  what.push(...describeExamples(state));
  const filters = state.cat.length + state.attr.length + (state.min !== null || state.max !== null ? 1 : 0);
  const scope = what.length ? ` for ${what.join(", ")}` : " in the chosen filters";
  const filtered = filters && what.length ? `, ${filters} filter${filters > 1 ? "s" : ""}` : "";
  if (!page.hits.length) {
    return page.offset ? `No more results${scope}${filtered}.` : `No results${scope}${filtered}.`;
  }
  const first = page.offset + 1;
  const last = page.offset + page.hits.length;
  const range = first === last ? `Result ${first}` : `Results ${first}–${last}`;
  return `${range}${scope}${filtered}${page.more ? "" : " (all shown)"}.`;
}

function explanation(hit) {
  const why = hit.explanation;
  if (!why) return null;
  const rows = [];
  if (why.vector_rank !== null) {
    rows.push(h("li", {}, `Picture match #${why.vector_rank}`, h("span", { class: "num" }, ` cosine ${fmt.score(why.vector_score)}`)));
  }
  if (why.lexical_rank !== null) {
    rows.push(h("li", {}, `Word match #${why.lexical_rank}`, h("span", { class: "num" }, ` BM25 ${fmt.score(why.lexical_score)}`)));
  }
  if (why.fused_score !== null) rows.push(h("li", {}, "Fused score ", h("span", { class: "num" }, fmt.score(why.fused_score))));
  const fields = Object.entries(why.matched_fields || {});
  return h(
    "details",
    { class: "why" },
    h("summary", {}, "Why this result"),
    h("ul", { class: "why-ranks" }, rows),
    fields.length
      ? h(
          "dl",
          { class: "why-fields" },
          fields.map(([name, snippet]) => [h("dt", {}, name), h("dd", {}, marked(snippet))]),
        )
      : h("p", { class: "hint" }, why.mode === "vector" ? "Ranked by picture similarity." : "No words matched."),
  );
}

/**
 * One result card. `itemHref`, `likeHref` and `lessHref` build the links of the item view, "more like this"
 * and "less like this"; `picked` (a set of ids) adds a checkbox to pick the card for "more like these".
 */
export function card(hit, { itemHref, likeHref, lessHref, picked, compact = false }) {
  const title = hit.title || hit.id;
  const scoreText = `Score ${fmt.score(hit.score)}`;
  const chosen = Boolean(picked?.has(hit.id));
  return h(
    "li",
    { class: chosen ? "card picked" : "card", dataset: { id: hit.id, title } },
    picked ? h("input", { type: "checkbox", class: "pick", checked: chosen, "aria-label": `Pick ${title}`, title: "Pick for “more like these” (or long-press the card)" }) : null,
    h(
      "a",
      { class: "card-link", href: itemHref(hit.id), dataset: { route: "", item: hit.id }, title: compact ? title : scoreText },
      h("span", { class: "card-img" }, thumb(thumbnailUrl(hit.thumbnail_url, THUMB), "", THUMB)),
      h("span", { class: "card-title" }, title),
    ),
    h(
      "p",
      { class: "card-meta" },
      hit.price !== null && hit.price !== undefined ? h("span", { class: "price" }, fmt.price(hit.price)) : null,
      hit.category ? h("span", { class: "category" }, hit.category) : null,
    ),
    compact ? null : h("span", { class: "score", "aria-hidden": "true" }, fmt.score(hit.score)),
    h(
      "p",
      { class: "card-actions" },
      h("a", { class: "more", href: likeHref(hit.id), dataset: { route: "" }, "aria-label": `More like this: ${title}` }, "More like this"),
      lessHref ? h("a", { class: "less", href: lessHref(hit.id), dataset: { route: "" }, "aria-label": `Less like this: ${title}` }, "Less like this") : null,
    ),
    compact ? null : explanation(hit),
  );
}

/** Render a page of hits into the grid, and the pager links; `picked` is the set of picked ids. */
export function renderPage(grid, pager, state, page, picked) {
  const itemHref = (id) => toUrl({ ...state, item: id });
  const likeHref = (id) => likeUrl(state, id);
  const lessHref = (id) => toUrl(lessState(state, [id]));
  fill(grid, page.hits.map((hit) => card(hit, { itemHref, likeHref, lessHref, picked })));
  const links = [];
  if (state.page > 1) {
    links.push(h("a", { href: toUrl({ ...state, page: state.page - 1, item: "" }), dataset: { route: "" }, rel: "prev" }, "← Previous"));
  }
  if (state.page > 1 || page.more) links.push(h("span", { class: "page-no", "aria-current": "page" }, `Page ${state.page}`));
  if (page.more) {
    links.push(h("a", { href: toUrl({ ...state, page: state.page + 1, item: "" }), dataset: { route: "" }, rel: "next" }, "Next →"));
  }
  fill(pager, links);
  performance.mark("catalens:results");
}

/** The empty state: what to try next. */
export function renderEmpty(grid, pager, state, clearFilters) {
  fill(pager);
  fill(
    grid,
    h(
      "li",
      { class: "empty" },
      h("p", {}, "Nothing matched."),
      h("p", { class: "hint" }, "Try other words, another ranking mode, or fewer filters."),
      hasFilters(state) ? h("button", { type: "button", on: { click: clearFilters } }, "Clear filters") : null,
    ),
  );
}

/** Arrow keys move between cards (up and down by a row), Home and End to the first and last card. */
export function gridKeys(event) {
  const link = event.target.closest?.(".card-link");
  if (!link || event.altKey || event.ctrlKey || event.metaKey) return;
  const grid = link.closest("ul");
  const links = [...grid.querySelectorAll(":scope > .card > .card-link")];
  const at = links.indexOf(link);
  if (at < 0) return;
  const top = (node) => Math.round(node.getBoundingClientRect().top);
  const secondRow = links.findIndex((other) => top(other) !== top(links[0]));
  const perRow = secondRow > 0 ? secondRow : links.length;
  const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow, Home: -at, End: links.length - 1 - at };
  if (!(event.key in moves)) return;
  const next = links[at + moves[event.key]];
  event.preventDefault();
  if (next) next.focus();
}
