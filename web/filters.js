// The filter panel: categories, a price range and the attributes the store knows, with item counts from
// GET /v1/info (counts are for the whole catalog).

import { debounce, fieldLabel as label, fill, fmt, h } from "./dom.js";

/**
 * Build the panel for the store's facets and keep it in step with the state.
 * @param {HTMLElement} root the panel's body
 * @param {object} info the /v1/info answer
 * @param {(change: object) => void} onChange called with the filter fields that changed
 * @returns {{sync: (state: object) => void}}
 */
export function createFilters(root, info, onChange) {
  const categories = info.facets.category || [];
  const attributes = Object.entries(info.facets).filter(([name]) => name !== "category");
  const range = info.price_range;
  let current = null;

  const categoryBox = (value) =>
    h("input", { type: "checkbox", value, on: { change: () => onChange({ cat: checkedCategories() }) } });
  const categoryBoxes = categories.map((facet) => categoryBox(facet.value));
  const categoryList = h(
    "ul",
    { class: "facet-values" },
    categories.map((facet, i) =>
      h("li", {}, h("label", {}, categoryBoxes[i], ` ${facet.value} `, h("span", { class: "count" }, fmt.count(facet.count)))),
    ),
  );
  const checkedCategories = () => categoryBoxes.filter((box) => box.checked).map((box) => box.value);

  const priceMin = h("input", { type: "number", id: "price-min", min: 0, step: "any", inputmode: "decimal", placeholder: range ? String(Math.floor(range.min)) : "" });
  const priceMax = h("input", { type: "number", id: "price-max", min: 0, step: "any", inputmode: "decimal", placeholder: range ? String(Math.ceil(range.max)) : "" });
  const priceError = h("p", { class: "field-error", id: "price-error", role: "alert" });
  const applyPrice = debounce(() => {
    const min = priceMin.value === "" ? null : Number(priceMin.value);
    const max = priceMax.value === "" ? null : Number(priceMax.value);
    const invalid = [min, max].some((v) => v !== null && (!Number.isFinite(v) || v < 0));
    const reversed = min !== null && max !== null && min > max;
    priceError.textContent = invalid ? "Prices are numbers of 0 or more." : reversed ? "The lowest price is above the highest." : "";
    for (const box of [priceMin, priceMax]) box.toggleAttribute("aria-invalid", invalid || reversed);
    if (!invalid && !reversed && (min !== current.min || max !== current.max)) onChange({ min, max });
  }, 400);
  for (const box of [priceMin, priceMax]) {
    box.setAttribute("aria-describedby", "price-error");
    box.addEventListener("input", applyPrice);
  }

  const selects = attributes.map(([name, facets]) =>
    h(
      "select",
      { id: `attr-${name}`, dataset: { name }, on: { change: () => onChange({ attr: chosenAttributes() }) } },
      h("option", { value: "" }, `Any ${label(name).toLowerCase()}`),
      facets.map((facet) => h("option", { value: facet.value }, `${facet.value} (${fmt.count(facet.count)})`)),
    ),
  );
  const chosenAttributes = () => {
    const kept = current.attr.filter((pair) => !attributes.some(([name]) => pair.startsWith(`${name}:`)));
    return [...kept, ...selects.filter((s) => s.value).map((s) => `${s.dataset.name}:${s.value}`)];
  };

  fill(
    root,
    h("fieldset", { class: "facet" }, h("legend", {}, "Category"), categoryList),
    h(
      "fieldset",
      { class: "facet price-facet" },
      h("legend", {}, "Price"),
      h("div", { class: "price-row" }, h("label", {}, "From", priceMin), h("label", {}, "To", priceMax)),
      range ? h("p", { class: "hint" }, `Catalog prices run from ${fmt.price(range.min)} to ${fmt.price(range.max)}.`) : null,
      priceError,
    ),
    attributes.map(([name], i) => h("div", { class: "facet" }, h("label", { for: `attr-${name}` }, label(name)), selects[i])),
    h("p", { class: "hint" }, "Numbers are items in the whole catalog."),
  );

  function sync(state) {
    current = state;
    for (const value of state.cat) {
      if (categoryBoxes.some((box) => box.value === value)) continue;
      const box = categoryBox(value); // a category from a shared URL that the facet list does not show
      categoryBoxes.push(box);
      categoryList.append(h("li", {}, h("label", {}, box, ` ${value}`)));
    }
    for (const box of categoryBoxes) box.checked = state.cat.includes(box.value);
    if (document.activeElement !== priceMin) priceMin.value = state.min === null ? "" : String(state.min);
    if (document.activeElement !== priceMax) priceMax.value = state.max === null ? "" : String(state.max);
    priceError.textContent = "";
    for (const select of selects) {
      const pair = state.attr.find((p) => p.startsWith(`${select.dataset.name}:`));
      const value = pair ? pair.slice(select.dataset.name.length + 1) : "";
      if (value && ![...select.options].some((o) => o.value === value)) select.append(h("option", { value }, value));
      select.value = value;
    }
  }
  return { sync };
}
