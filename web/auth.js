// API keys in the page. The page never embeds a key: it sends the one it was given, entered in the key form
// or passed once in the URL fragment (`#key=...`, which browsers never send to a server), and keeps it in
// sessionStorage, so it lasts for this tab only and goes when the tab closes.

const STORAGE = "catalens.apiKey";
export const KEY_NEEDED = "catalens:key-needed";

/** The key this tab was given, or "" (also when storage is unavailable). */
export function apiKey() {
  try {
    return sessionStorage.getItem(STORAGE) || "";
  } catch {
    return "";
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(STORAGE, key);
    else sessionStorage.removeItem(STORAGE);
  } catch {
    // storage disabled: the key lasts until the page is left
  }
}

/** Headers that carry the key, if there is one. */
export function authHeaders() {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** Take a key given as `#key=...` and remove it from the address (and from history) at once. */
export function takeKeyFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = fragment.get("key");
  if (key === null) return;
  storeKey(key.trim());
  history.replaceState(history.state, "", `${location.pathname}${location.search}`);
}

/** Tell the page that the service asked for a key (401); the key form opens. */
export function keyNeeded(message) {
  window.dispatchEvent(new CustomEvent(KEY_NEEDED, { detail: message }));
}

/**
 * An <img> that failed to load may need the key (reads keyed): fetch it with the key and show it from a
 * blob URL. Returns false when there is no key to try, or it was tried already.
 */
export function retryWithKey(img) {
  if (!apiKey() || img.dataset.keyed) return false;
  img.dataset.keyed = "1";
  fetch(img.src, { headers: authHeaders() })
    .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(String(response.status)))))
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      img.src = url;
    })
    .catch(() => img.classList.add("broken"));
  return true;
}

/**
 * Wire the key form, opened when the service asks for a key, and the button that forgets the key (shown
 * while there is one). Using a key, or forgetting it, reloads the page.
 */
export function setupKeyForm(form, forget) {
  const input = form.querySelector("input");
  window.addEventListener(KEY_NEEDED, () => {
    form.hidden = false;
    input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    storeKey(input.value.trim());
    input.value = "";
    location.reload();
  });
  forget.addEventListener("click", () => {
    storeKey("");
    location.reload();
  });
  forget.hidden = !apiKey();
}
