// Vite builds the UI into dist/ (served by the daemon from its API port) and runs the dev server.
// Development against a running box: FS_API=https://127.0.0.1:8480 npm run dev; the dev server
// proxies /api to it (the box's self-signed certificate is accepted for the proxy only).
import { loadEnv } from 'vite';
import { defineConfig } from 'vitest/config';

export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, '.', 'FS_');
  return {
    base: '/',
    // Preact's JSX runtime through esbuild: no framework plugin needed.
    esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
    resolve: {
      alias: { react: 'preact/compat', 'react-dom': 'preact/compat' },
    },
    build: {
      outDir: 'dist',
      emptyOutDir: true,
      target: 'es2020',
      // The strict CSP forbids inline scripts and data: scripts; keep every asset a file.
      assetsInlineLimit: 0,
      sourcemap: false,
      reportCompressedSize: true,
    },
    server: {
      port: 5173,
      proxy: {
        '/api': {
          target: env.FS_API || 'https://127.0.0.1:8480',
          changeOrigin: true,
          secure: false,
        },
      },
    },
    test: {
      include: ['src/**/*.test.ts'],
      environment: 'node',
    },
  };
});
