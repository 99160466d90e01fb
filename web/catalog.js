// The merchandiser's catalog page: store statistics and failed items from GET /v1/info, and a zero-shot
// labelling tool: labels against a set of items (a query's results or a category), the predicted label and
// its confidence per item, lowest confidence first, exported as CSV. The tags section counts the tagging
// runs' tags per attribute and decision, and leads to the review screen (review.js).

import { classify, getInfo, searchText } from "./api.js";
import { fieldLabel, fill, fmt, h, thumb, thumbnailUrl } from "./dom.js";

const MAX_ITEMS = 1000; // POST /v1/classify takes at most 1000 ids

function stat(name, value, note) {
  return h("div", { class: "stat" }, h("dt", {}, name), h("dd", {}, value instanceof Node ? value : String(value), note ? h("span", { class: "hint" }, ` ${note}`) : null));
}

function renderStats(root, info) {
  const passes = Object.entries(info.passes || {}).flatMap(([kind, specs]) =>
    Object.entries(specs).map(([spec, n]) => `${kind} ${spec}: ${fmt.count(n)}`),
  );
  const range = info.price_range;
  fill(
    root,
    h(
      "dl",
      { class: "stats" },
      stat("Items indexed", fmt.count(info.items.indexed ?? 0)),
      stat("Failed items", fmt.count(info.items.failed ?? 0)),
      stat("Model", info.model, `(${info.dim} dimensions)`),
      stat("Index", info.index_factory, info.index_count !== null ? `(${fmt.count(info.index_count)} vectors)` : null),
      info.index && info.index.recall_at_10 !== null
        ? stat(
            "Measured recall@10",
            info.index.recall_at_10.toFixed(3),
            `(${info.index.latency_ms.toFixed(2)} ms per query${info.index.target_met ? "" : ", below its target"})`,
          )
        : null,
      stat("Generation", info.generation ?? "none yet"),
      stat("Categories", fmt.count((info.facets.category || []).length)),
      range ? stat("Prices", `${fmt.price(range.min)} – ${fmt.price(range.max)}`) : null,
      stat("Captions and OCR", passes.length ? h("ul", { class: "passes" }, passes.map((p) => h("li", {}, p))) : "none yet"),
    ),
  );
}

function renderFailures(root, info) {
  const failed = info.items.failed ?? 0;
  if (!failed) {
    fill(root, h("p", { class: "hint" }, "No item failed to index."));
    return;
  }
  fill(
    root,
    h(
      "table",
      { class: "table" },
      h("caption", {}, info.failures.length < failed ? `The ${info.failures.length} most recent of ${failed} failed items` : `${failed} failed item${failed > 1 ? "s" : ""}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Item"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Reason"))),
      h(
        "tbody",
        {},
        info.failures.map((f) => h("tr", {}, h("td", {}, f.id), h("td", { class: "source" }, f.source), h("td", {}, f.reason))),
      ),
    ),
  );
}

function renderTags(root, info, reviewHref) {
  const tags = Object.entries(info.tags || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!tags.length) {
    fill(root, h("p", { class: "hint" }, "No tags yet: catalens tag run tags the catalog with a taxonomy of attributes."));
    return;
  }
  const waiting = tags.reduce((sum, [, counts]) => sum + (counts.review ?? 0), 0);
  const cell = (n) => h("td", { class: "number" }, fmt.count(n ?? 0));
  fill(
    root,
    h(
      "p",
      {},
      waiting
        ? h("a", { class: "button primary", id: "review-link", href: reviewHref(""), dataset: { route: "" } }, `Review tags (${fmt.count(waiting)} waiting)`)
        : h("span", { class: "hint" }, "No suggestion is waiting for review."),
    ),
    h(
      "table",
      { class: "table tag-counts" },
      h("caption", { class: "visually-hidden" }, "Tags per attribute and decision"),
      h("thead", {}, h("tr", {}, ["Attribute", "Accepted", "To review", "Rejected"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        tags.map(([name, counts]) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, counts.review ? h("a", { href: reviewHref(name), dataset: { route: "" } }, fieldLabel(name)) : fieldLabel(name)),
            cell(counts.accept),
            cell(counts.review),
            cell(counts.reject),
          ),
        ),
      ),
    ),
  );
}

/** Labels typed by a person: comma- or line-separated, trimmed, duplicates dropped. */
export function parseLabels(text) {
  return [...new Set(text.split(/[,\n]/).map((label) => label.trim()).filter(Boolean))];
}

// Cells a spreadsheet would run as formulas are prefixed with a quote (CSV injection).
function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows) {
  const header = ["id", "title", "category", "predicted_label", "confidence", "runner_up", "runner_up_confidence"];
  const lines = rows.map((r) =>
    [r.id, r.title, r.category, r.label, r.confidence.toFixed(4), r.runnerUp, r.runnerUp ? r.runnerUpConfidence.toFixed(4) : ""]
      .map(csvCell)
      .join(","),
  );
  return `${[header.join(","), ...lines].join("\r\n")}\r\n`;
}

const SORTS = {
  "confidence-asc": (a, b) => a.confidence - b.confidence || a.id.localeCompare(b.id),
  "confidence-desc": (a, b) => b.confidence - a.confidence || a.id.localeCompare(b.id),
  label: (a, b) => a.label.localeCompare(b.label) || a.confidence - b.confidence,
  id: (a, b) => a.id.localeCompare(b.id),
};

/**
 * @param {HTMLElement} root the catalog view
 * @param {{itemHref: (id: string) => string, reviewHref: (attribute: string) => string}} hooks
 */
export function createCatalog(root, hooks) {
  const stats = root.querySelector("#catalog-stats");
  const failures = root.querySelector("#catalog-failures");
  const tagCounts = root.querySelector("#catalog-tags");
  const form = root.querySelector("#label-form");
  const status = root.querySelector("#label-status");
  const error = root.querySelector("#label-error");
  const categorySelect = root.querySelector("#label-category");
  const sortSelect = root.querySelector("#label-sort");
  const exportButton = root.querySelector("#label-export");
  const table = root.querySelector("#label-table");
  const summary = root.querySelector("#label-summary");
  let info = null;
  let rows = [];
  let controller = null;

  async function refresh() {
    try {
      info = await getInfo(100);
    } catch (e) {
      fill(stats, h("p", { class: "error", role: "alert" }, `The store statistics could not be loaded. ${e.message}`));
      return;
    }
    renderStats(stats, info);
    renderFailures(failures, info);
    renderTags(tagCounts, info, hooks.reviewHref);
    const chosen = categorySelect.value;
    fill(
      categorySelect,
      (info.facets.category || []).map((f) => h("option", { value: f.value }, `${f.value} (${fmt.count(f.count)})`)),
    );
    if (chosen) categorySelect.value = chosen;
  }

  async function collect(set, count, signal) {
    const maxK = info?.limits?.max_k || 200;
    const found = new Map();
    for (let offset = 0; found.size < count && offset <= 10_000; ) {
      const k = Math.min(maxK, count - found.size);
      const answer =
        set.kind === "category"
          ? await searchText(set.category, { k, offset, mode: "vector", category: set.category }, signal)
          : await searchText(set.query, { k, offset, mode: "hybrid" }, signal);
      for (const hit of answer.hits) found.set(hit.id, hit);
      status.textContent = `Collecting items… ${found.size}`;
      if (answer.hits.length < k) break;
      offset += k;
    }
    return [...found.values()];
  }

  function renderRows() {
    const sorted = [...rows].sort(SORTS[sortSelect.value] || SORTS["confidence-asc"]);
    const body = table.tBodies[0];
    fill(
      body,
      sorted.map((r) =>
        h(
          "tr",
          { dataset: { id: r.id } },
          h(
            "td",
            {},
            h("a", { class: "row-item", href: hooks.itemHref(r.id), dataset: { route: "", item: r.id } }, thumb(thumbnailUrl(r.thumbnail, 64), "", 40), h("span", {}, r.title || r.id)),
          ),
          h("td", {}, r.category || ""),
          h("td", { class: "label" }, r.label),
          h(
            "td",
            { class: "confidence" },
            h("meter", { min: 0, max: 1, low: 0.4, high: 0.7, optimum: 1, value: r.confidence, "aria-hidden": "true" }),
            ` ${fmt.percent(r.confidence)}`,
          ),
          h("td", {}, r.runnerUp ? `${r.runnerUp} (${fmt.percent(r.runnerUpConfidence)})` : ""),
        ),
      ),
    );
    table.hidden = rows.length === 0;
    exportButton.disabled = rows.length === 0;
    sortSelect.disabled = rows.length === 0;
    const byLabel = new Map();
    for (const r of rows) {
      const entry = byLabel.get(r.label) || { n: 0, sum: 0 };
      entry.n += 1;
      entry.sum += r.confidence;
      byLabel.set(r.label, entry);
    }
    fill(
      summary,
      [...byLabel.entries()]
        .sort((a, b) => b[1].n - a[1].n)
        .map(([label, e]) => h("li", {}, h("strong", {}, label), ` ${fmt.count(e.n)} item${e.n > 1 ? "s" : ""}, mean confidence ${fmt.percent(e.sum / e.n)}`)),
    );
  }

  async function run(event) {
    event.preventDefault();
    error.textContent = "";
    const data = new FormData(form);
    const labels = parseLabels(String(data.get("labels") || ""));
    const kind = data.get("set") === "category" ? "category" : "query";
    const set = { kind, query: String(data.get("query") || "").trim(), category: String(data.get("category") || "") };
    const count = Math.min(MAX_ITEMS, Math.max(1, Number(data.get("count")) || 50));
    const template = String(data.get("template") || "").trim();
    const problem =
      labels.length < 2
        ? "Give at least two labels, separated by commas."
        : kind === "query" && !set.query
          ? "Type a query to choose the items, or pick a category."
          : kind === "category" && !set.category
            ? "Pick a category."
            : template && !template.includes("{}")
              ? "The prompt template needs {} where the label goes."
              : "";
    if (problem) {
      error.textContent = problem;
      return;
    }
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    table.setAttribute("aria-busy", "true");
    const started = performance.now();
    try {
      status.textContent = "Collecting items…";
      const items = await collect(set, count, signal);
      if (!items.length) {
        rows = [];
        renderRows();
        status.textContent = "No items matched, so there is nothing to label.";
        return;
      }
      status.textContent = `Labelling ${fmt.count(items.length)} items…`;
      const answer = await classify(
        items.map((item) => item.id),
        labels,
        { topK: 2, templates: template ? [template] : null, signal },
      );
      const byId = new Map(items.map((item) => [item.id, item]));
      rows = answer.results.map((result) => {
        const item = byId.get(result.id) || {};
        const [best, second] = result.predictions;
        return {
          id: result.id,
          title: item.title || "",
          category: item.category || "",
          thumbnail: item.thumbnail_url,
          label: best.label,
          confidence: best.probability,
          runnerUp: second ? second.label : "",
          runnerUpConfidence: second ? second.probability : 0,
        };
      });
      renderRows();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      status.textContent = `Labelled ${fmt.count(rows.length)} items with ${labels.length} labels in ${seconds} s.`;
    } catch (e) {
      if (e.name === "AbortError") return;
      status.textContent = "";
      error.textContent = `Labelling failed. ${e.message}`;
    } finally {
      submit.disabled = false;
      table.removeAttribute("aria-busy");
    }
  }

  function exportCsv() {
    const sorted = [...rows].sort(SORTS[sortSelect.value] || SORTS["confidence-asc"]);
    const blob = new Blob([toCsv(sorted)], { type: "text/csv;charset=utf-8" });
    const link = h("a", { href: URL.createObjectURL(blob), download: "catalens-labels.csv", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  form.addEventListener("submit", run);
  sortSelect.addEventListener("change", renderRows);
  exportButton.addEventListener("click", exportCsv);
  // Typing in a set's field picks that set.
  for (const [field, value] of [["#label-query", "query"], ["#label-category", "category"]]) {
    root.querySelector(field).addEventListener("input", () => {
      form.querySelector(`input[name=set][value=${value}]`).checked = true;
    });
  }
  renderRows();
  return { refresh };
}
