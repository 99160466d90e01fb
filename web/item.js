// The item view: a modal dialog with the large image, the catalog fields, what the indexer learnt from the
// pixels (caption, tags, text found by OCR), zero-shot labels against the store's categories, and similar
// items (with a brand toggle), and "complete the look" from other categories (look.js). Accepted tags of tagging runs show as attributes, the ones waiting for review as suggestions.
// Escape, the close button or a click outside closes it.

import { ApiError, classify, getItem } from "./api.js";
import { retryWithKey } from "./auth.js";
import { fieldLabel, fill, fmt, h } from "./dom.js";
import { createStrips } from "./look.js";

function section(title, ...body) {
  return h("section", { class: "item-section" }, h("h3", {}, title), ...body);
}

function facts(item) {
  const rows = [
    ["Category", item.category],
    ["Item id", item.id],
    ["Product", item.product_id],
    ...Object.entries(item.attributes || {}).map(([name, value]) => [fieldLabel(name), typeof value === "object" ? JSON.stringify(value) : value]),
    ...acceptedTags(item.tags || [], item.attributes || {}),
    ["Image", item.width && item.height ? `${item.width} × ${item.height} px` : null],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  return h("dl", { class: "facts" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))]));
}

/** Accepted tags as [attribute, values] rows (a multi-label attribute may hold several values), leaving out
 * what the catalog's own attributes already say. */
function acceptedTags(tags, attributes) {
  const byAttribute = new Map();
  for (const tag of tags.filter((t) => t.decision === "accept" && String(attributes[t.attribute] ?? "") !== t.value)) {
    byAttribute.set(tag.attribute, [...(byAttribute.get(tag.attribute) || []), tag.value]);
  }
  return [...byAttribute.entries()].map(([name, values]) => [fieldLabel(name), values.join(", ")]);
}

function suggestedTags(tags) {
  const waiting = tags.filter((t) => t.decision === "review");
  if (!waiting.length) return null;
  return section(
    "Suggested tags",
    h("ul", { class: "tags", "aria-label": "Suggested tags" }, waiting.map((t) => h("li", {}, `${fieldLabel(t.attribute)}: `, h("strong", {}, t.value), t.confidence !== null ? h("span", { class: "count" }, ` ${fmt.percent(t.confidence)}`) : null))),
    h("p", { class: "hint" }, "waiting for review in the catalog view"),
  );
}

function captionSection(caption) {
  if (!caption) return section("Caption", h("p", { class: "hint" }, "No caption yet: run catalens caption on the store."));
  const tags = Object.entries(caption.tags || {});
  return section(
    "Caption",
    h("p", { class: "caption" }, caption.text || "(empty)"),
    tags.length
      ? h(
          "ul",
          { class: "tags", "aria-label": "Tags" },
          tags.map(([name, value]) => {
            const score = caption.scores?.[name];
            return h("li", {}, `${name}: `, h("strong", {}, value), score !== undefined ? h("span", { class: "count" }, ` ${fmt.percent(score)}`) : null);
          }),
        )
      : null,
    h("p", { class: "hint" }, `by ${caption.spec}`),
  );
}

function ocrSection(ocr) {
  if (!ocr) return section("Text in the image", h("p", { class: "hint" }, "Not read yet: run catalens ocr on the store."));
  return section(
    "Text in the image",
    ocr.text ? h("p", { class: "ocr" }, ocr.text) : h("p", { class: "hint" }, "No text found."),
    h("p", { class: "hint" }, `read by ${ocr.spec}`),
  );
}

function bars(predictions) {
  return h(
    "ul",
    { class: "bars" },
    predictions.map((p) =>
      h(
        "li",
        {},
        h("span", { class: "bar-label" }, p.label),
        h("meter", { min: 0, max: 1, value: p.probability, "aria-label": `${p.label} ${fmt.percent(p.probability)}` }),
        h("span", { class: "count" }, fmt.percent(p.probability)),
      ),
    ),
  );
}

/**
 * @param {HTMLDialogElement} dialog
 * @param {{labels: () => string[], categories: () => object[] | null, itemHref: (id: string) => string,
 *          likeHref: (id: string) => string, onClose: () => void}} hooks
 */
export function createItemView(dialog, hooks) {
  const strips = createStrips(hooks);
  const body = h("div", { class: "item-content" });
  const close = h("button", { type: "button", class: "close", "aria-label": "Close item view", on: { click: () => dialog.close() } }, "×");
  fill(dialog, h("div", { class: "item-frame" }, close, body));
  let shown = "";
  let controller = null;

  dialog.addEventListener("close", () => {
    controller?.abort();
    const was = shown;
    shown = "";
    if (was) hooks.onClose();
  });
  // A click on the backdrop lands on the dialog element itself.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });

  async function load(id) {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    fill(body, h("h2", { id: "item-title" }, "Loading…"), h("p", { class: "loading", role: "status" }, "Loading the item…"));
    dialog.setAttribute("aria-busy", "true");
    let item;
    try {
      item = await getItem(id, signal);
    } catch (error) {
      if (error.name === "AbortError") return;
      dialog.removeAttribute("aria-busy");
      const message = error instanceof ApiError && error.status === 404 ? `There is no item “${id}”.` : error.message;
      fill(body, h("h2", { id: "item-title" }, "Item not available"), h("p", { class: "error", role: "alert" }, message));
      return;
    }
    const title = item.title || item.id;
    const labelsOut = h("div", { class: "labels", "aria-live": "polite" }, h("p", { class: "hint" }, "Labelling…"));
    const [similarSection, similar] = strips.similar(item, signal);
    const [lookSection, look] = item.status === "indexed" ? strips.look(item, signal) : [null, null];
    fill(
      body,
      h("h2", { id: "item-title" }, title),
      h(
        "div",
        { class: "item-layout" },
        h("figure", { class: "item-figure" }, h("img", { src: item.image_url, alt: title, width: item.width || undefined, height: item.height || undefined, on: { error: (event) => retryWithKey(event.target) } })),
        h(
          "div",
          { class: "item-info" },
          item.price !== null ? h("p", { class: "item-price" }, fmt.price(item.price)) : null,
          item.description ? h("p", { class: "description" }, item.description) : null,
          h("p", { class: "item-actions" }, h("a", { class: "button", href: hooks.likeHref(item.id), dataset: { route: "" } }, "More like this")),
          facts(item),
          item.status !== "indexed" ? h("p", { class: "error" }, `Not searchable: ${item.error || item.status}`) : null,
          suggestedTags(item.tags || []),
          captionSection(item.caption),
          ocrSection(item.ocr),
          section("Zero-shot labels", labelsOut),
        ),
      ),
      similarSection,
      lookSection,
    );
    dialog.removeAttribute("aria-busy");
    const labels = hooks.labels();
    const labelling =
      labels.length > 1
        ? classify([item.id], labels, { topK: 3, signal }).then(
            (answer) => fill(labelsOut, h("p", { class: "hint" }, "Best-matching store categories:"), bars(answer.results[0].predictions)),
            (error) => error.name !== "AbortError" && fill(labelsOut, h("p", { class: "error" }, error.message)),
          )
        : fill(labelsOut, h("p", { class: "hint" }, "The store has fewer than two categories to choose from."));
    await Promise.all([labelling, similar, look]);
  }

  return {
    /** Show an item (loading it unless it is already shown). */
    open(id) {
      if (!dialog.open) dialog.showModal();
      if (shown === id) return;
      shown = id;
      dialog.scrollTop = 0;
      close.focus();
      load(id);
    },
    close() {
      shown = "";
      if (dialog.open) dialog.close();
    },
    get shown() {
      return shown;
    },
  };
}
