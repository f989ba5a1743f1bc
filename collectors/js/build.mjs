// Build dist/autocap.js (readable) and dist/autocap.min.js from src/ with esbuild.
//   node build.mjs [outdir]    (default: dist; the tests build into a temp dir and compare)
import { build } from "esbuild";

const outdir = process.argv[2] || "dist";
const common = {
  entryPoints: ["src/index.js"],
  bundle: true,
  format: "iife",
  target: ["es2017"],
  legalComments: "none",
  logLevel: "warning",
};
const banner = { js: "/* autocap.js | Apache-2.0 | the autocap snippet: see collectors/js/README */" };
await build({ ...common, banner, outfile: `${outdir}/autocap.js` });
await build({ ...common, banner, outfile: `${outdir}/autocap.min.js`, minify: true });
