// The page's state lives in the URL query string, so every view can be shared, bookmarked and reached
// with the back button:
//   ?q=red+shoe&not=leather&mode=lexical&cat=shoes&min=10&max=50&attr=color:red&page=2   search
//   ?like=ITEM&q=in+red          items like a stored item, optionally refined with words
//   ?img=TOKEN&q=in+red          an uploaded image (kept in this tab's session storage)
//   ...&item=ITEM                the item view, over whichever view is below it
//   ?view=catalog                the merchandiser's catalog page
//   ?view=review&tag=ATTRIBUTE   the tag review screen, optionally for one attribute
// `k` (results per page, 1 to 100) may be added to any search URL.

export const MODES = ["hybrid", "vector", "lexical"];
export const PAGE_SIZE = 24;
const VIEWS = ["search", "catalog", "review"];

function number(text) {
  if (text === null || text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : null;
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
  return toUrl({ ...state, view: "search", like: id, img: "", q: "", not: "", mode: "hybrid", page: 1, item: "" });
}

/** What decides a result list: a change here runs a new search, anything else (the item view) does not. */
export function searchKey(state) {
  const { q, not, like, img, mode, cat, min, max, attr, page, k } = state;
  return JSON.stringify([q.trim(), not.trim(), like, img, mode, cat, min, max, attr, page, k]);
}

export function hasQuery(state) {
  return Boolean(state.q.trim() || state.not.trim() || state.like || state.img);
}

export function hasFilters(state) {
  return state.cat.length > 0 || state.attr.length > 0 || state.min !== null || state.max !== null;
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
