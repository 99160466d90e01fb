// The item view's recommendation strips: "similar items" with a "more from this brand / fewer from this brand"
// toggle, and "complete the look": the best items of other categories.
//
// Similar items: GET /v1/items/{id}/similar, or, with the toggle on, POST /v1/recommend with the item as the
// positive example and either a filter on its brand (more: only that brand) or `max_per: {brand: 1}` (fewer: at
// most one item per brand). Items without a brand attribute get no toggle. The choice stays for the next item.
//
// Complete the look: POST /v1/recommend with the item as the positive example, `group_by: "category"` and
// `group_size: 2`. The filter syntax cannot exclude a value (search/schemas.py `Filters`: `categories` lists the
// categories allowed), so the item's own category is left out by listing every other one, when /v1/info's
// category facets are the whole list; otherwise (the facets are cut at FACET_LIMIT, or not loaded yet) one
// group more is asked for and the item's own category is dropped here.

import { getSimilar, recommend } from "./api.js";
import { fill, h } from "./dom.js";
import { card } from "./results.js";

const SIMILAR = 8;
const GROUPS = 4;
const GROUP_SIZE = 2;
const FACET_LIMIT = 50; // /v1/info lists at most this many categories (the store's facet_counts default)

/** The item's brand attribute ({name, value}), whatever the case of its name, or null. */
export function brandOf(item) {
  const name = Object.keys(item.attributes || {}).find((key) => key.toLowerCase() === "brand");
  const value = name === undefined ? null : item.attributes[name];
  return typeof value === "string" || typeof value === "number" ? { name, value: String(value) } : null;
}

/** The request of the similar-items list for a brand choice: "" (plain similar items), "more" or "fewer". */
function similarItems(item, brand, choice, signal) {
  if (!brand || !choice) return getSimilar(item.id, { k: SIMILAR }, signal);
  const body = { positive: [item.id], k: SIMILAR };
  if (choice === "more") body.filters = { attributes: { [brand.name]: brand.value } };
  else body.max_per = { [brand.name]: 1 };
  return recommend(body, signal);
}

/** The groups of "complete the look" for an item; `categories` are /v1/info's category facets or null. */
export async function lookGroups(item, categories, signal) {
  const own = item.category || null;
  const complete = Array.isArray(categories) && categories.length < FACET_LIMIT;
  const body = { positive: [item.id], group_by: "category", group_size: GROUP_SIZE, k: GROUPS };
  if (own && complete) {
    const others = categories.map((facet) => facet.value).filter((value) => value !== own);
    if (!others.length) return [];
    body.filters = { categories: others };
  } else if (own) {
    body.k = GROUPS + 1; // the item's own category may take one of the groups
  }
  const answer = await recommend(body, signal);
  return (answer.groups || []).filter((group) => group.value !== own && group.hits.length).slice(0, GROUPS);
}

/**
 * The item view's strips, keeping the brand choice from one item to the next.
 * @param {{itemHref: (id: string) => string, likeHref: (id: string) => string,
 *          categories: () => {value: string, count: number}[] | null}} hooks
 */
export function createStrips(hooks) {
  let choice = ""; // "", "more" or "fewer"
  const cards = (hits) => hits.map((hit) => card(hit, { itemHref: hooks.itemHref, likeHref: hooks.likeHref, compact: true }));
  const failed = (list, error) => error.name !== "AbortError" && fill(list, h("li", { class: "error" }, error.message));

  /** "Similar items": the list and, for an item with a brand, the toggle. Returns [section, done]. */
  function similar(item, signal) {
    const brand = brandOf(item);
    const grid = h("ul", { class: "grid compact", "aria-label": "Similar items" });
    const said = h("p", { class: "visually-hidden", role: "status" });
    let latest = 0; // a quick second click on the toggle: only the last answer is shown
    const load = () => {
      grid.setAttribute("aria-busy", "true");
      const asked = choice;
      const ticket = ++latest;
      return similarItems(item, brand, asked, signal)
        .then(
          (answer) => {
            if (ticket !== latest) return;
            fill(grid, answer.hits.length ? cards(answer.hits) : h("li", { class: "hint" }, "No similar items."));
            const how = { more: `, all from ${brand?.value}`, fewer: ", at most one per brand" }[asked] || "";
            if (brand) said.textContent = `${answer.hits.length} similar items${how}.`;
          },
          (error) => ticket === latest && failed(grid, error),
        )
        .finally(() => ticket === latest && grid.removeAttribute("aria-busy"));
    };
    const toggles = brand
      ? [
          ["more", `More from ${brand.value}`],
          ["fewer", `Fewer from ${brand.value}`],
        ].map(([value, label]) =>
          h("button", { type: "button", class: "toggle", dataset: { brand: value }, "aria-pressed": String(choice === value) }, label),
        )
      : [];
    for (const button of toggles) {
      button.addEventListener("click", () => {
        choice = choice === button.dataset.brand ? "" : button.dataset.brand;
        for (const other of toggles) other.setAttribute("aria-pressed", String(other.dataset.brand === choice));
        load();
      });
    }
    const bar = brand ? h("div", { class: "brand-toggle", role: "group", "aria-label": "Brands among similar items" }, toggles) : null;
    const section = h("section", { class: "item-section similar" }, h("h3", {}, "Similar items"), bar, said, grid);
    return [section, load()];
  }

  /** "Complete the look": the best items of a few other categories. Returns [section, done]. */
  function look(item, signal) {
    const strip = h("div", { class: "look" }, h("p", { class: "hint" }, "Finding items of other categories…"));
    const done = lookGroups(item, hooks.categories(), signal).then(
      (groups) =>
        fill(
          strip,
          groups.length
            ? groups.map((group) =>
                h("section", { class: "look-group" }, h("h4", {}, group.value), h("ul", { class: "grid compact", "aria-label": `From ${group.value}` }, cards(group.hits))),
              )
            : h("p", { class: "hint" }, "No items of other categories to go with it."),
        ),
      (error) => error.name !== "AbortError" && fill(strip, h("p", { class: "error" }, error.message)),
    );
    const section = h("section", { class: "item-section complete-look" }, h("h3", {}, "Complete the look"), strip);
    return [section, done];
  }

  return { similar, look };
}
