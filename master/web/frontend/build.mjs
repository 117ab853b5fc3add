// Bundle the page scripts and uPlot (with its CSS) into ../static/build/app.{js,css}.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/app.js'],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['es2020'],
  outdir: '../static/build',
  logLevel: 'warning',
});
