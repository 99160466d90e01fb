// The page's state lives in the URL query string, so every view can be shared, bookmarked and reached
// with the back button:
//   ?q=red+shoe&not=leather&mode=lexical&cat=shoes&min=10&max=50&attr=color:red&page=2   search
//   ?like=ITEM&q=in+red          items like a stored item, optionally refined with words
//   ?img=TOKEN&q=in+red          an uploaded image (kept in this tab's session storage)
//   ?more=A&more=B&less=C        a recommendation: more like A and B, less like C (POST /v1/recommend); it may
//                                 keep the query it started from (?q=shoe&less=C: results for "shoe", less like C)
//   ...&item=ITEM                the item view, over whichever view is below it
//   ?view=catalog                the merchandiser's catalog page
//   ?view=review&tag=ATTRIBUTE   the tag review screen, optionally for one attribute
// `k` (results per page, 1 to 100) may be added to any search URL.

export const MODES = ["hybrid", "vector", "lexical"];
export const PAGE_SIZE = 24;
export const MAX_EXAMPLES = 20; // item examples per side kept in a URL
const VIEWS = ["search", "catalog", "review"];

function number(text) {
  if (text === null || text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : null;
}

/** Item ids of one side of a recommendation: distinct, non-empty, the latest MAX_EXAMPLES. */
function examples(ids) {
  return [...new Set(ids.filter(Boolean))].slice(-MAX_EXAMPLES);
}

/** The state a URL describes (unknown or malformed parameters fall back to defaults). */
export function parseState(href) {
  const params = new URL(href).searchParams;
  const mode = params.get("mode");
  return {
    view: VIEWS.includes(params.get("view")) ? params.get("view") : "search",
    tag: params.get("view") === "review" ? params.get("tag") || "" : "",
    q: (params.get("q") || "").slice(0, 1000),
    not: (params.get("not") || "").slice(0, 1000),
    like: params.get("like") || "",
    more: examples(params.getAll("more")),
    less: examples(params.getAll("less")),
    img: params.get("img") || "",
    mode: MODES.includes(mode) ? mode : "hybrid",
    cat: params.getAll("cat").filter(Boolean),
    min: number(params.get("min")),
    max: number(params.get("max")),
    attr: params.getAll("attr").filter((pair) => pair.indexOf(":") > 0),
    page: Math.min(Math.max(1, Number.parseInt(params.get("page"), 10) || 1), 400),
    k: Math.min(Math.max(1, Number.parseInt(params.get("k"), 10) || PAGE_SIZE), 100),
    item: params.get("item") || "",
  };
}

/** The URL (path and query) of a state; defaults are left out so URLs stay short. */
export function toUrl(state) {
  const params = new URLSearchParams();
  if (state.view === "catalog" || state.view === "review") params.set("view", state.view);
  if (state.view === "review" && state.tag) params.set("tag", state.tag);
  if (state.view === "search") {
    if (state.q) params.set("q", state.q);
    if (state.not) params.set("not", state.not);
    if (state.like) params.set("like", state.like);
    for (const id of state.more || []) params.append("more", id);
    for (const id of state.less || []) params.append("less", id);
    if (state.img) params.set("img", state.img);
    if (state.mode && state.mode !== "hybrid") params.set("mode", state.mode);
    for (const cat of state.cat) params.append("cat", cat);
    if (state.min !== null) params.set("min", String(state.min));
    if (state.max !== null) params.set("max", String(state.max));
    for (const pair of state.attr) params.append("attr", pair);
    if (state.k !== PAGE_SIZE) params.set("k", String(state.k));
    if (state.page > 1) params.set("page", String(state.page));
  }
  if (state.item) params.set("item", state.item);
  const query = params.toString();
  return `${location.pathname}${query ? `?${query}` : ""}`;
}

/** "More like this": items like a stored item, with the current filters; words and images start afresh. */
export function likeUrl(state, id) {
  return toUrl({ ...state, view: "search", like: id, more: [], less: [], img: "", q: "", not: "", mode: "hybrid", page: 1, item: "" });
}

/** Whether a state asks for a recommendation (POST /v1/recommend) rather than a search. */
export function recommending(state) {
  return state.more.length > 0 || state.less.length > 0;
}

/**
 * "More like these": the chosen items become positive examples. Inside a recommendation they join its
 * examples; otherwise they start one of their own (words, image and "like" start afresh; filters stay).
 */
export function moreState(state, ids) {
  const base = recommending(state) ? state : { ...state, like: "", img: "", q: "", not: "", mode: "hybrid", more: [] };
  const less = state.less.filter((id) => !ids.includes(id));
  return { ...base, view: "search", more: examples([...base.more, ...ids]), less, page: 1, item: "" };
}

/** "Less like this": the items become negative examples of the current recommendation, or of a new one that
 * keeps the current query (its words, image or liked item stay the positive side). */
export function lessState(state, ids) {
  const less = examples([...state.less, ...ids]);
  return { ...state, view: "search", more: state.more.filter((id) => !ids.includes(id)), less, page: 1, item: "" };
}

/** What decides a result list: a change here runs a new search, anything else (the item view) does not. */
export function searchKey(state) {
  const { q, not, like, more, less, img, mode, cat, min, max, attr, page, k } = state;
  return JSON.stringify([q.trim(), not.trim(), like, more, less, img, mode, cat, min, max, attr, page, k]);
}

export function hasQuery(state) {
  return Boolean(state.q.trim() || state.not.trim() || state.like || state.img || recommending(state));
}

export function hasFilters(state) {
  return state.cat.length > 0 || state.attr.length > 0 || state.min !== null || state.max !== null;
}

/** Browsing by filters alone ranks the matching items by how well they fit the filter words. */
export function browseText(state) {
  const words = [...state.cat, ...state.attr.map((pair) => pair.slice(pair.indexOf(":") + 1))];
  return words.join(" ") || "product";
}

/** The API's filter fields of a state, for GET query strings and multipart forms. */
export function filterParams(state) {
  return { category: state.cat, price_min: state.min, price_max: state.max, attr: state.attr };
}

/** The same filters as the JSON body of POST /v1/search expects them. */
export function filterBody(state) {
  const attributes = {};
  for (const pair of state.attr) {
    const at = pair.indexOf(":");
    attributes[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const filters = { categories: state.cat, attributes };
  if (state.min !== null) filters.price_min = state.min;
  if (state.max !== null) filters.price_max = state.max;
  return filters;
}
