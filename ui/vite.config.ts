// Vite builds the UI into ui/dist, which the desktop shell embeds and `quarry serve` will serve.
import { defineConfig } from "vite";

export default defineConfig({
  // Relative asset paths: the same build loads from tauri:// and from http://127.0.0.1.
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  server: { port: 5173, strictPort: true },
});
