// Entry point of the browser build: replace the loader's queue (window.autocap, an array
// of [method, ...args]) with the client and replay the calls, init first.

import { Autocap } from "./client.js";

(function (win) {
  try {
    const stub = win.autocap;
    if (stub && stub.__autocap) return; // the script is on the page twice
    const script = win.document.currentScript;
    const client = new Autocap(win, script && script.src);
    win.autocap = client;
    if (Array.isArray(stub)) {
      const calls = stub.filter((c) => c[0] === "init").concat(stub.filter((c) => c[0] !== "init"));
      for (const [name, ...args] of calls) if (typeof client[name] === "function") client[name](...args);
    }
  } catch (e) {
    // Never break the host page.
  }
})(window);
