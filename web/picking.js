// Picking result cards for "more like these" and "less like these": a checkbox on every card, or a long press
// on a touch screen. Picks stay across pages of results until they are used or cleared; the bar above the
// results says how many items are picked (a live region) and offers the actions.

const LONG_PRESS_MS = 500;
const MOVE_TOLERANCE_PX = 10;

/**
 * @param {HTMLElement} grid the results list (its cards carry data-id and data-title, and a .pick checkbox)
 * @param {HTMLElement} bar the picking bar: #picked-count, #pick-actions, #more-like-these, #less-like-these,
 *   #clear-picks
 * @param {{onMore: (ids: string[]) => void, onLess: (ids: string[]) => void,
 *          remember: (id: string, title: string) => void}} hooks
 * @returns {{picked: Map<string, string>, clear: () => void}} the picked ids (id -> title, in picking order)
 */
export function createPicking(grid, bar, hooks) {
  const picked = new Map();
  const count = bar.querySelector("#picked-count");
  const actions = bar.querySelector("#pick-actions");
  const less = bar.querySelector("#less-like-these");

  function render() {
    const n = picked.size;
    count.textContent = n ? `${n} item${n > 1 ? "s" : ""} picked` : "";
    less.textContent = n > 1 ? "Less like these" : "Less like this";
    actions.hidden = !n;
    bar.classList.toggle("active", n > 0);
  }

  function pick(card, on) {
    const id = card.dataset.id;
    if (on) picked.set(id, card.dataset.title || id);
    else picked.delete(id);
    card.classList.toggle("picked", on);
    const box = card.querySelector(".pick");
    if (box) box.checked = on;
    render();
  }

  function clear() {
    picked.clear();
    for (const card of grid.querySelectorAll(".card.picked")) pick(card, false);
    render();
  }

  function use(action) {
    const ids = [...picked.keys()];
    for (const [id, title] of picked) hooks.remember(id, title);
    clear();
    action(ids);
  }

  grid.addEventListener("change", (event) => {
    if (event.target.matches?.(".pick")) pick(event.target.closest(".card"), event.target.checked);
  });

  // A long press picks (or unpicks) a card on touch screens; the click that may follow must not open the item,
  // and the press must not open the browser's context menu.
  let press = null;
  let pressed = false;
  const cancel = () => {
    if (press) clearTimeout(press.timer);
    press = null;
  };
  grid.addEventListener("pointerdown", (event) => {
    const card = event.target.closest?.(".card");
    pressed = false;
    cancel();
    if (event.pointerType === "mouse" || !card?.querySelector(".pick") || event.target.closest(".pick")) return;
    const timer = setTimeout(() => {
      press = null;
      pressed = true;
      pick(card, !picked.has(card.dataset.id));
      navigator.vibrate?.(15);
    }, LONG_PRESS_MS);
    press = { x: event.clientX, y: event.clientY, timer };
  });
  grid.addEventListener("pointermove", (event) => {
    if (press && Math.hypot(event.clientX - press.x, event.clientY - press.y) > MOVE_TOLERANCE_PX) cancel();
  });
  grid.addEventListener("pointerup", cancel);
  grid.addEventListener("pointercancel", cancel); // the page scrolls instead
  grid.addEventListener(
    "click",
    (event) => {
      if (!pressed) return;
      pressed = false;
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );
  grid.addEventListener("contextmenu", (event) => {
    if (pressed || press) event.preventDefault();
  });

  bar.querySelector("#more-like-these").addEventListener("click", () => use(hooks.onMore));
  less.addEventListener("click", () => use(hooks.onLess));
  bar.querySelector("#clear-picks").addEventListener("click", clear);
  render();
  return { picked, clear };
}
