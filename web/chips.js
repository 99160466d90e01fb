// The chips under the search field say what the results are made from: the uploaded image, the item they are
// like, and a recommendation's examples ("more like" and "less like" items). Each chip has a remove button. The
// ids a recommendation could not use (unknown or not indexed) are named under the chips.

import { getItem } from "./api.js";
import { fill, h, thumb } from "./dom.js";
import { recallImage } from "./uploads.js";

const itemThumb = (id) => thumb(`v1/items/${encodeURIComponent(id)}/thumbnail?size=64`, "", 32);

/**
 * @param {HTMLElement} root the chip row
 * @param {HTMLElement} note where skipped examples are named
 * @param {{change: (fields: object) => void}} hooks starts a new search with some fields changed
 * @returns {{render: (state: object) => void, remember: (id: string, title: string) => void,
 *           showSkipped: (skipped: {id: string, reason: string}[]) => void}}
 */
export function createChips(root, note, hooks) {
  const titles = new Map(); // item id -> title, so a chip can name its item
  const asked = new Set();

  function titleOf(id) {
    if (titles.has(id)) return titles.get(id);
    if (!asked.has(id)) {
      asked.add(id);
      getItem(id).then(
        (item) => {
          titles.set(id, item.title || id);
          named(id);
        },
        () => {}, // the search itself reports an unknown item
      );
    }
    return id;
  }

  /** A title arrived: name the item in its chips (in place, so focus stays where it is). */
  function named(id) {
    const title = titles.get(id);
    for (const chip of root.querySelectorAll(".chip")) {
      if (chip.dataset.of !== id) continue;
      chip.querySelector(".chip-title").textContent = title;
      const remove = chip.querySelector(".chip-remove");
      if (chip.dataset.example) remove.setAttribute("aria-label", removeExample(title));
    }
  }

  const removeExample = (title) => `Remove “${title}” from the examples`;

  function chip(image, label, title, removeLabel, remove, extra = {}) {
    return h(
      "span",
      { class: "chip", ...extra },
      image,
      label,
      title ? h("strong", { class: "chip-title" }, title) : null,
      h("button", { type: "button", class: "chip-remove", "aria-label": removeLabel, on: { click: remove } }, "×"),
    );
  }

  function render(state) {
    const chips = [];
    if (state.img) {
      const image = recallImage(state.img);
      const preview = image
        ? h("img", { src: URL.createObjectURL(image), alt: "", width: 32, height: 32, on: { load: (e) => URL.revokeObjectURL(e.target.src) } })
        : null;
      chips.push(chip(preview, "Your image", "", "Stop searching with the image", () => hooks.change({ img: "" })));
    }
    if (state.like) {
      const title = titleOf(state.like);
      chips.push(chip(itemThumb(state.like), "Like ", title, "Stop searching for similar items", () => hooks.change({ like: "" }), { dataset: { of: state.like } }));
    }
    for (const [side, label] of [["more", "More like "], ["less", "Less like "]]) {
      for (const id of state[side]) {
        const title = titleOf(id);
        const remove = () => hooks.change({ [side]: state[side].filter((other) => other !== id) });
        chips.push(chip(itemThumb(id), label, title, removeExample(title), remove, { dataset: { example: side, of: id } }));
      }
    }
    if (state.more.length + state.less.length > 1) {
      chips.push(h("button", { type: "button", class: "link-button", on: { click: () => hooks.change({ more: [], less: [] }) } }, "Clear examples"));
    }
    fill(root, chips);
  }

  return {
    render,
    remember(id, title) {
      if (title && title !== id) titles.set(id, title);
    },
    showSkipped(skipped) {
      const names = skipped.map((s) => `${titles.get(s.id) || s.id} (${s.reason})`);
      note.textContent = names.length ? `Not used as examples: ${names.join(", ")}.` : "";
    },
  };
}
