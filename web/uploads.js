// Images a shopper searched with. A URL cannot carry an image, so it carries a token; the image itself is
// kept in memory and, when small enough, in this tab's session storage, so reloading the page or coming
// back to it with the back button still finds it.

const memory = new Map();
const PREFIX = "catalens.upload.";
const SESSION_LIMIT = 1_500_000; // bytes of image; data URLs are a third larger and storage holds about 5 MB

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Keep an image and return the token that names it in URLs. */
export async function rememberImage(file) {
  const token = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  memory.set(token, file);
  if (file.size <= SESSION_LIMIT) {
    try {
      for (const key of Object.keys(sessionStorage)) if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
      const data = await readAsDataUrl(file);
      sessionStorage.setItem(PREFIX + token, JSON.stringify({ name: file.name || "image", data }));
    } catch {
      // Storage full or disabled: the image still works until the tab is closed or reloaded.
    }
  }
  return token;
}

/** The image a token names, or null when this tab no longer has it. */
export function recallImage(token) {
  if (memory.has(token)) return memory.get(token);
  try {
    const saved = JSON.parse(sessionStorage.getItem(PREFIX + token) || "null");
    if (!saved || typeof saved.data !== "string" || !saved.data.startsWith("data:image/")) return null;
    const type = saved.data.slice(5, saved.data.indexOf(";"));
    const bytes = Uint8Array.from(atob(saved.data.slice(saved.data.indexOf(",") + 1)), (c) => c.charCodeAt(0));
    const file = new File([bytes], saved.name || "image", { type });
    memory.set(token, file);
    return file;
  } catch {
    return null; // storage disabled or an entry this page did not write
  }
}
