// One build for every script and stylesheet the app serves. Output names are fixed so
// Django templates can refer to them; whitenoise adds content hashes in production.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  // Django serves the build under STATIC_URL: lazily loaded chunks must be fetched from there.
  base: "/static/",
  publicDir: false,
  build: {
    outDir: "static/dist",
    emptyOutDir: true,
    sourcemap: true,
    rollupOptions: {
      input: {
        app: resolve(import.meta.dirname, "static/src/app.js"),
        policy_editor: resolve(import.meta.dirname, "static/src/policies/editor.js"),
        flow_editor: resolve(import.meta.dirname, "static/src/studio/editor.jsx"),
        inbox: resolve(import.meta.dirname, "static/src/inbox/inbox.js"),
        dashboard: resolve(import.meta.dirname, "static/src/dashboard.js"),
        monitoring: resolve(import.meta.dirname, "static/src/monitoring.js"),
      },
      output: {
        entryFileNames: "[name].js",
        chunkFileNames: "chunks/[name].js",
        assetFileNames: "[name][extname]",
      },
    },
  },
});
