// The page talks only to the public /v1 API. URLs are relative to the page, so the service may be mounted
// under a path prefix. Requests carry the API key the page was given, if any (see auth.js).

import { authHeaders, keyNeeded } from "./auth.js";

export class ApiError extends Error {
  /** @param {number} status HTTP status, 0 when the service could not be reached */
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

function url(path, params) {
  const target = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params || {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== null && one !== undefined && one !== "") target.searchParams.append(name, String(one));
    }
  }
  return target;
}

async function request(path, { params, json, form, signal, method } = {}) {
  const headers = { accept: "application/json", ...authHeaders() };
  const init = { method: method || (json || form ? "POST" : "GET"), signal, headers };
  if (json) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (form) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(url(path, params), init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The search service cannot be reached. Check that it is running, then try again.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError") throw error;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : "";
    const reason = detail || `${response.status} ${response.statusText || "error"}`.trim();
    const prefix = response.status >= 500 ? "The service had a problem: " : "";
    if (response.status === 401) keyNeeded(reason);
    throw new ApiError(response.status, `${prefix}${reason}`);
  }
  if (body === null) throw new ApiError(response.status, "The service sent an answer the page cannot read.");
  return body;
}

/** Store facts: model, counts, index, facets, price range, failures, limits. */
export function getInfo(failures = 20, signal) {
  return request("v1/info", { params: { failures }, signal });
}

export function getItem(id, signal) {
  return request(`v1/items/${encodeURIComponent(id)}`, { signal });
}

export function getSimilar(id, params, signal) {
  return request(`v1/items/${encodeURIComponent(id)}/similar`, { params, signal });
}

/** GET /v1/tags/review: suggestions waiting for a person, least confident first ({total, items}). */
export function getReview({ attribute, limit, offset }, signal) {
  return request("v1/tags/review", { params: { attribute, limit, offset }, signal });
}

/** POST /v1/items/{id}/tags: a person's decision ({attribute, action: accept|correct|reject, value}). */
export function decideTag(id, decision, signal) {
  return request(`v1/items/${encodeURIComponent(id)}/tags`, { json: decision, signal });
}

export function classify(ids, labels, { templates, topK = 3, signal } = {}) {
  const json = { ids, labels, top_k: topK };
  if (templates && templates.length) json.templates = templates;
  return request("v1/classify", { json, signal });
}

/** GET /v1/search with a text query; `params` holds k, offset, mode, explain and filter parameters. */
export function searchText(q, params, signal) {
  return request("v1/search", { params: { q, ...params }, signal });
}

/** POST /v1/search: a text query and/or weighted parts ({text|item_id, weight}). */
export function searchCombined(body, signal) {
  return request("v1/search", { json: body, signal });
}

/** POST /v1/search/image: an image file, optional words to add and to avoid, paging and filters. */
export function searchImage(image, fields, signal) {
  const form = new FormData();
  form.append("image", image, image.name || "image");
  for (const [name, value] of Object.entries(fields)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== null && one !== undefined && one !== "") form.append(name, String(one));
    }
  }
  return request("v1/search/image", { form, signal });
}

/** POST /v1/recommend: positive and negative examples (item ids, {id, weight} or {vector, weight}) and options
 * (k, offset, filters, max_per, group_by, group_size...); answers {hits, skipped, groups, ...}. */
export function recommend(body, signal) {
  return request("v1/recommend", { json: body, signal });
}

/** POST /v1/embed: the store model's vector of a text, or of an image file. */
export async function embed({ text, image }, signal) {
  let answer;
  if (image) {
    const form = new FormData();
    form.append("image", image, image.name || "image");
    answer = await request("v1/embed", { form, signal });
  } else {
    answer = await request("v1/embed", { json: { text }, signal });
  }
  return answer.vectors[0];
}
