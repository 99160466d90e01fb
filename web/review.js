// The tag review screen (?view=review&tag=ATTRIBUTE): the suggestions a tagging run left for a person, one
// at a time and least confident first, with the large image, the suggested value and its runner-up. A person
// accepts it, chooses another value, rejects it or skips it; keys: A accept, 1–9 choose the numbered value,
// R reject, S or → skip. Decisions go to POST /v1/items/{id}/tags and leave the queue at once; skipped
// suggestions stay in it (the next page of the queue starts after them), so a later session sees them again.

import { decideTag, getInfo, getReview } from "./api.js";
import { retryWithKey } from "./auth.js";
import { fieldLabel, fill, fmt, h } from "./dom.js";

const PAGE = 20; // suggestions fetched at a time
const KEYED_VALUES = 9; // values 1–9 have a key

const SHORTCUTS = { a: "A", r: "R", s: "S ArrowRight" }; // aria-keyshortcuts of the buttons
const keyOf = (entry) => JSON.stringify([entry.id, entry.attribute, entry.value]);

/**
 * @param {HTMLElement} root the review view
 * @param {{itemHref: (id: string) => string, onAttribute: (attribute: string) => void,
 *          active: () => boolean}} hooks
 */
export function createReview(root, hooks) {
  const select = root.querySelector("#review-attribute");
  const progress = root.querySelector("#review-progress");
  const error = root.querySelector("#review-error");
  const card = root.querySelector("#review-card");
  let session = null; // one pass over the queue of one attribute (or all)
  let loadedFor = null;

  function newSession(attribute) {
    return { attribute, buffer: [], seen: new Set(), skipped: 0, done: 0, left: 0, current: null, busy: false, ended: false };
  }

  async function fetchMore(s) {
    // Decided suggestions have left the queue; the skipped ones are still at its front, so the unseen ones
    // start after them.
    const page = await getReview({ attribute: s.attribute, limit: PAGE, offset: s.skipped });
    const fresh = page.items.filter((entry) => !s.seen.has(keyOf(entry)));
    s.buffer.push(...fresh);
    s.left = Math.max(fresh.length, page.total - s.skipped);
    s.ended = fresh.length === 0;
  }

  function total(s) {
    return s.done + s.left + (s.current ? 1 : 0);
  }

  function renderProgress(s) {
    const n = total(s);
    progress.textContent = s.current ? `${fmt.count(s.done + 1)} of ${fmt.count(n)}` : n ? `${fmt.count(n)} of ${fmt.count(n)} done` : "";
  }

  async function advance(s) {
    s.current = null;
    if (!s.buffer.length && !s.ended) {
      try {
        await fetchMore(s);
      } catch (e) {
        if (s === session) fill(card, h("p", { class: "error", role: "alert" }, `The review queue could not be loaded. ${e.message}`));
        return;
      }
    }
    if (s !== session) return;
    const next = s.buffer.shift() || null;
    if (next) {
      s.seen.add(keyOf(next));
      s.left = Math.max(0, s.left - 1);
    }
    s.current = next;
    renderProgress(s);
    if (next) renderEntry(s, next);
    else renderFinished(s);
  }

  function renderFinished(s) {
    const what = s.attribute ? ` for ${fieldLabel(s.attribute)}` : "";
    const message = s.done
      ? `You have been through the queue${what}: ${fmt.count(s.done - s.skipped)} decided, ${fmt.count(s.skipped)} skipped.`
      : `Nothing to review${what}: every suggestion has been decided, or no tagging run has left any (catalens tag run tags the store).`;
    fill(
      card,
      h(
        "div",
        { class: "review-empty" },
        h("p", { class: "empty-queue" }, message),
        s.skipped ? h("button", { type: "button", on: { click: () => start(s.attribute) } }, "Review the skipped ones") : null,
      ),
    );
  }

  function renderEntry(s, entry) {
    const title = entry.title || entry.id;
    const others = entry.values.filter((v) => v !== entry.value);
    const choice = h(
      "select",
      { id: "review-choice", "aria-label": `Another value of ${fieldLabel(entry.attribute)}` },
      entry.values.map((v, i) => h("option", { value: v, selected: v === (entry.runner_up || others[0]) }, i < KEYED_VALUES ? `${i + 1}. ${v}` : v)),
    );
    const button = (label, key, onClick, extra = {}) =>
      h("button", { type: "button", "aria-keyshortcuts": SHORTCUTS[key], on: { click: onClick }, ...extra }, label, h("kbd", { "aria-hidden": "true" }, key.toUpperCase()));
    const percent = (p) => (p === null || p === undefined ? "" : ` ${fmt.percent(p)}`);
    fill(
      card,
      h(
        "article",
        { class: "review-item", dataset: { id: entry.id, attribute: entry.attribute, value: entry.value } },
        h(
          "figure",
          { class: "review-figure" },
          h("img", { src: entry.image_url, alt: title, on: { error: (event) => retryWithKey(event.target) } }),
        ),
        h(
          "div",
          { class: "review-info" },
          h("h2", { class: "review-title" }, h("a", { href: hooks.itemHref(entry.id), dataset: { route: "", item: entry.id } }, title)),
          h("p", { class: "hint" }, `Item ${entry.id}`),
          h(
            "dl",
            { class: "facts" },
            h("dt", {}, "Attribute"),
            h("dd", {}, fieldLabel(entry.attribute), entry.multi_label ? h("span", { class: "hint" }, " (several values may apply)") : null),
            h("dt", {}, "Suggested"),
            h("dd", { class: "review-suggested" }, h("strong", {}, entry.value), h("span", { class: "count" }, percent(entry.confidence))),
            entry.runner_up ? [h("dt", {}, "Runner-up"), h("dd", { class: "review-runner-up" }, entry.runner_up, h("span", { class: "count" }, percent(entry.runner_up_confidence)))] : null,
          ),
          h(
            "div",
            { class: "review-actions" },
            button("Accept ", "a", () => decide("accept", entry.value), { class: "primary", id: "review-accept" }),
            button("Reject ", "r", () => decide("reject", entry.value), { id: "review-reject" }),
            button("Skip ", "s", skip, { id: "review-skip" }),
          ),
          entry.values.length
            ? h(
                "div",
                { class: "review-choose" },
                h("label", { for: "review-choice" }, "Choose another value"),
                choice,
                button("Use this value ", "1–9", () => choose(choice.value), { id: "review-use" }),
              )
            : null,
        ),
      ),
    );
  }

  async function decide(action, value, first = null) {
    const s = session;
    const entry = s?.current;
    if (!entry || s.busy) return;
    s.busy = true;
    error.textContent = "";
    card.setAttribute("aria-busy", "true");
    try {
      if (first) await decideTag(entry.id, first);
      const answer = await decideTag(entry.id, { attribute: entry.attribute, action, value });
      if (s !== session) return;
      // Suggestions of this item and attribute that the decision settled (a single-label attribute's other
      // values) have left the queue too.
      const waiting = new Set(answer.tags.filter((t) => t.decision === "review" && t.source === "model").map((t) => t.value));
      const before = s.buffer.length;
      s.buffer = s.buffer.filter((e) => e.id !== entry.id || e.attribute !== entry.attribute || waiting.has(e.value));
      s.left = Math.max(0, s.left - (before - s.buffer.length));
      s.done += 1;
      await advance(s);
    } catch (e) {
      error.textContent = `The decision was not saved. ${e.message}`;
    } finally {
      s.busy = false;
      card.removeAttribute("aria-busy");
    }
  }

  function choose(value) {
    const entry = session?.current;
    if (!entry || !value) return;
    if (value === entry.value) decide("accept", value);
    // Several values may hold: choosing another says the suggested one does not.
    else if (entry.multi_label) decide("correct", value, { attribute: entry.attribute, action: "reject", value: entry.value });
    else decide("correct", value);
  }

  async function skip() {
    const s = session;
    if (!s?.current || s.busy) return;
    s.busy = true;
    error.textContent = "";
    s.skipped += 1;
    s.done += 1;
    try {
      await advance(s);
    } finally {
      s.busy = false;
    }
  }

  async function renderAttributes(attribute) {
    let info;
    try {
      info = await getInfo(0);
    } catch (e) {
      error.textContent = `The attributes could not be loaded. ${e.message}`;
      return;
    }
    const tags = info.tags || {};
    const names = Object.keys(tags).sort();
    if (attribute && !names.includes(attribute)) names.push(attribute);
    const waiting = (name) => tags[name]?.review ?? 0;
    const all = names.reduce((sum, name) => sum + waiting(name), 0);
    fill(
      select,
      h("option", { value: "" }, `All attributes (${fmt.count(all)} to review)`),
      names.map((name) => h("option", { value: name }, `${fieldLabel(name)} (${fmt.count(waiting(name))})`)),
    );
    select.value = attribute;
  }

  function start(attribute) {
    session = newSession(attribute);
    error.textContent = "";
    progress.textContent = "";
    fill(card, h("p", { class: "loading", role: "status" }, "Loading the review queue…"));
    advance(session);
  }

  select.addEventListener("change", () => hooks.onAttribute(select.value));

  document.addEventListener("keydown", (event) => {
    if (!hooks.active() || !session?.current || event.defaultPrevented) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable], dialog")) return;
    const entry = session.current;
    const key = event.key.toLowerCase();
    if (key === "a") decide("accept", entry.value);
    else if (key === "r") decide("reject", entry.value);
    else if (key === "s" || event.key === "ArrowRight") skip();
    else if (/^[1-9]$/.test(key) && Number(key) <= entry.values.length) choose(entry.values[Number(key) - 1]);
    else return;
    event.preventDefault();
  });

  return {
    /** Show the queue of `attribute` ("" for all); a new attribute starts a new pass, the same one goes on. */
    show(attribute) {
      if (loadedFor === attribute && session) return;
      loadedFor = attribute;
      renderAttributes(attribute);
      start(attribute);
    },
    /** Start afresh next time the view is shown (the queue may have changed meanwhile). */
    reset() {
      loadedFor = null;
    },
  };
}
