// Recommendations on the results page (?more=A&more=B&less=C, see state.js): the state's examples become the
// positive and negative examples of POST /v1/recommend. Item ids go as they are; the query a recommendation
// started from (its words, its uploaded image, its "like" item, or the filter words when browsing) stays a
// positive example, words to avoid a negative one; words and images go as vectors from POST /v1/embed, kept
// for a while so that adding or removing an example does not embed the same query again.

import { embed, recommend } from "./api.js";
import { browseText, filterBody, hasFilters } from "./state.js";

const KEEP_VECTORS = 16;

/** A small cache of query vectors: "text:WORDS" or "image:TOKEN" -> vector (oldest dropped first). */
function vectorCache() {
  const vectors = new Map();
  return async function vectorOf(key, what, signal) {
    if (!vectors.has(key)) {
      const vector = await embed(what, signal);
      if (vectors.size >= KEEP_VECTORS) vectors.delete(vectors.keys().next().value);
      vectors.set(key, vector);
    }
    return vectors.get(key);
  };
}

/**
 * The recommendation of a state.
 * @returns {(state: object, image: File|null, signal: AbortSignal) => Promise<{hits: object[], more: boolean,
 *           offset: number, skipped: {id: string, reason: string}[]}>}
 */
export function createRecommender() {
  const vectorOf = vectorCache();

  async function examples(state, image, signal) {
    const q = state.q.trim();
    const not = state.not.trim();
    const text = (words) => vectorOf(`text:${words}`, { text: words }, signal).then((vector) => ({ vector, weight: 1 }));
    const positive = [state.like, ...state.more].filter(Boolean);
    const wanted = [];
    if (state.img) wanted.push(vectorOf(`image:${state.img}`, { image }, signal).then((vector) => ({ vector, weight: 1 })));
    if (q) wanted.push(text(q));
    else if (!positive.length && !state.img && hasFilters(state)) wanted.push(text(browseText(state)));
    const [extra, avoid] = await Promise.all([Promise.all(wanted), not ? text(not).then((v) => [v]) : []]);
    return { positive: [...positive, ...extra], negative: [...state.less, ...avoid] };
  }

  return async function fetchRecommendation(state, image, signal) {
    const offset = (state.page - 1) * state.k;
    // One extra hit tells whether a next page exists; example items are never returned (exclude_inputs).
    const body = { ...(await examples(state, image, signal)), k: state.k + 1, offset, filters: filterBody(state) };
    const answer = await recommend(body, signal);
    const hits = answer.hits;
    return { hits: hits.slice(0, state.k), more: hits.length > state.k, offset, skipped: answer.skipped || [] };
  };
}

/** The status line's words for a recommendation's examples, e.g. "more like 2 items, less like 1". */
export function describeExamples(state) {
  const items = (n) => `${n} item${n > 1 ? "s" : ""}`;
  const what = [];
  if (state.more.length) what.push(`more like ${items(state.more.length)}`);
  if (state.less.length) what.push(`less like ${items(state.less.length)}`);
  return what;
}
